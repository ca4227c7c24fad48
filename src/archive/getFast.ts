// The fast path of `pgwarden wal-get` with walGet.async: a segment the fetcher decoded ahead is
// served from the spool by this process, which loads Node built-ins only (no zod, no Temporal, no
// OpenPGP). It also answers "not in the archive" (exit 1) for a file the archive has no record of:
// recovery asks for several (the next timeline's history, the segment after the archive's end)
// and each would otherwise load the full program to say so. Anything else — prefetching off, a
// config it does not read plainly, a history file the archive has, a segment not spooled (yet) —
// goes to the full program, which fetches it from the archive itself.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { walRecordName } from '../lib/layout.js';
import { isWalFileName } from '../lib/wal.js';
import { configPath, parseWalArgs, readPlainConfig, walPushSettings } from './fastPath.js';
import { configIdentity, getFromSpool, hasEnvOverrides, type FetcherJob } from './getSpool.js';
import { asyncGetSettings } from './settings.js';

export async function fastWalGet(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const call = parseWalArgs(args, 'wal-get');
  if (!call || !isWalFileName(call.positional[0])) return false;
  // The config's identity before it is read: replaced in between, the script sees another file.
  const source = { identity: configIdentity(configPath(call.config, env)), overrides: hasEnvOverrides(env) };
  const raw = await readPlainConfig(call.config, env);
  const job = raw && fetcherJob(raw, call.cluster, configPath(call.config, env));
  if (!job) return false;
  const [name, destination] = call.positional;
  if (notArchived(job.archiveDir, name)) {
    process.exitCode = 1; // EXIT_NOT_FOUND, as the full program says it
    return true;
  }
  try {
    return await getFromSpool(job, name, destination, source);
  } catch (err) {
    // The spool cannot be used (its directory's owner or mode): the archive still can.
    console.error(`pgwarden: wal-get ${name}: ${(err as Error).message}; fetching it from the archive`);
    return false;
  }
}

/**
 * The archive, a directory, has no record of the file (the full program would find none either);
 * false when it has one or when that cannot be told (the directory missing or unreadable: the full
 * program then reports what it finds).
 */
function notArchived(archiveDir: string, name: string): boolean {
  try {
    return (
      statSync(archiveDir).isDirectory() &&
      statSync(join(archiveDir, walRecordName(name)), { throwIfNoEntry: false }) === undefined
    );
  } catch {
    return false;
  }
}

/** The `walGet` section with the types and bounds the schema gives it. */
function plainWalGet(v: unknown): v is { async?: boolean; spoolDirectory?: string; prefetch?: number } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const w = v as Record<string, unknown>;
  return (
    Object.keys(w).every((k) => ['async', 'spoolDirectory', 'prefetch'].includes(k)) &&
    (w.async === undefined || typeof w.async === 'boolean') &&
    (w.spoolDirectory === undefined || (typeof w.spoolDirectory === 'string' && w.spoolDirectory.length > 0)) &&
    (w.prefetch === undefined ||
      (typeof w.prefetch === 'number' && Number.isInteger(w.prefetch) && w.prefetch >= 1 && w.prefetch <= 64))
  );
}

/** The fetcher's job when the config turns prefetching on and states it plainly; else undefined. */
export function fetcherJob(raw: Record<string, unknown>, cluster: string, config: string): FetcherJob | undefined {
  const archive = walPushSettings(raw, cluster); // the archive as wal-push sees it, or undefined
  if (!archive || (raw.walGet !== undefined && !plainWalGet(raw.walGet))) return undefined;
  const settings = asyncGetSettings(raw.walGet as Parameters<typeof asyncGetSettings>[0], cluster);
  return settings && { ...settings, config, cluster, archiveDir: archive.archiveDir };
}

// The fast path of `pgwarden wal-push`: argv parsed by hand, the config read as plain JSON, and
// only what wal-push needs taken from it. It declines (returns false) whatever it does not read
// plainly — another command, other options, a config whose fields look unusual or unreadable —
// and the full program then handles the call, validating the whole config with zod.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { asyncPushSettings, type PusherJob, type WalPushSettings } from './settings.js';
import { applyEnvOverrides, defaultConfigPath } from '../lib/configOverrides.js';
import { walArchiveDir } from '../lib/layout.js';

export async function fastWalPush(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  // The asynchronous pusher (pushAsync.ts), started by an archive_command with its job in argv.
  if (args[0] === 'wal-push-daemon' && args.length === 2) {
    const { runPusher } = await import('./pushAsync.js');
    await runPusher(JSON.parse(args[1]!) as PusherJob);
    return true;
  }
  const call = parseWalPushArgs(args);
  if (!call) return false;
  const raw = await readPlainConfig(call.config, env);
  if (!raw) return false;
  const settings = walPushSettings(raw, call.cluster);
  if (!settings) return false;
  // Loaded here, not at the top: wal-get's fast path (getFast.ts) shares this file and never pushes.
  const { archiveWalFile } = await import('./pushAsync.js');
  try {
    const result = await archiveWalFile(settings, call.path, call.name);
    if (result.outcome === 'identical')
      console.error(`pgwarden: ${call.name} was archived already with the same content`);
  } catch (err) {
    console.error(`pgwarden: ${(err as Error).message}`);
    process.exitCode = 1; // PostgreSQL keeps the segment and retries
  }
  return true;
}

/** The config file as plain JSON with the environment's overrides; undefined when unreadable (the full program says why). */
export async function readPlainConfig(
  file: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<Record<string, unknown> | undefined> {
  try {
    const raw: unknown = JSON.parse(await readFile(configPath(file, env), 'utf8'));
    return isObject(raw) ? (applyEnvOverrides(raw, env) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export const configPath = (file: string | undefined, env: NodeJS.ProcessEnv): string =>
  file ? resolve(file) : defaultConfigPath(env);

/** `[-c F | --config F | --config=F] wal-push --cluster C <path> <name>` (options after the command in any order). */
export function parseWalPushArgs(
  args: string[],
): { config?: string; cluster: string; path: string; name: string } | undefined {
  const call = parseWalArgs(args, 'wal-push');
  return call && { config: call.config, cluster: call.cluster, path: call.positional[0], name: call.positional[1] };
}

/** `[-c F | --config F | --config=F] <command> --cluster C <two positional arguments>`. */
export function parseWalArgs(
  args: string[],
  command: 'wal-push' | 'wal-get',
): { config?: string; cluster: string; positional: [string, string] } | undefined {
  let config: string | undefined;
  let i = 0;
  for (; i < args.length && args[i] !== command; i++) {
    const a = args[i]!;
    if ((a === '-c' || a === '--config') && i + 1 < args.length) config = args[++i];
    else if (a.startsWith('--config=')) config = a.slice('--config='.length);
    else return undefined;
  }
  if (args[i] !== command) return undefined;
  let cluster: string | undefined;
  const positional: string[] = [];
  for (let j = i + 1; j < args.length; j++) {
    const a = args[j]!;
    if (a === '--cluster' && j + 1 < args.length) cluster = args[++j];
    else if (a.startsWith('--cluster=')) cluster = a.slice('--cluster='.length);
    else if (a.startsWith('-')) return undefined;
    else positional.push(a);
  }
  if (!cluster || positional.length !== 2) return undefined;
  return { config, cluster, positional: [positional[0]!, positional[1]!] };
}

// The keys the schema (src/config/schema.ts, all .strict()) allows where wal-push reads: a key
// outside these (a misspelt `encryption` would mean unencrypted WAL) sends the call to zod.
const KNOWN = {
  top: [
    'temporal',
    'clusters',
    'repositories',
    'encryption',
    'retention',
    'compression',
    'walPush',
    'walGet',
    'limits',
    'verification',
    'walMaintenance',
    'walRetention',
    'schedules',
    'health',
    'notifications',
    'metrics',
    'worker',
  ],
  cluster: [
    'host',
    'port',
    'user',
    'passwordEnv',
    'passfile',
    'maintenanceDatabase',
    'sslmode',
    'dataDirectory',
    'hostQueue',
    'logFile',
    'binDir',
    'hooks',
    'archiveWaitSeconds',
    'repository',
    'offsite',
    'databases',
    'schedules',
    'standbys',
    'backupFrom',
    'replication',
  ],
  localRepository: ['type', 'path'],
  compression: ['algorithm', 'level'],
  walPush: ['async', 'spoolDirectory', 'processes', 'waitSeconds'],
  encryption: ['recipients', 'privateKeyFile', 'passphraseEnv'],
};
const CLUSTER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,62}$/;

/** The `walPush` section with the types and bounds the schema gives it. */
function plainWalPush(
  v: unknown,
): v is { async?: boolean; spoolDirectory?: string; processes?: number; waitSeconds?: number } {
  if (!onlyKnown(v, KNOWN.walPush)) return false;
  const w = v as Record<string, unknown>;
  const int = (x: unknown, min: number, max = Infinity) =>
    x === undefined || (typeof x === 'number' && Number.isInteger(x) && x >= min && x <= max);
  return (
    (w.async === undefined || typeof w.async === 'boolean') &&
    (w.spoolDirectory === undefined || (typeof w.spoolDirectory === 'string' && w.spoolDirectory.length > 0)) &&
    int(w.processes, 1, 16) &&
    int(w.waitSeconds, 1, 3600)
  );
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const onlyKnown = (v: unknown, keys: string[]) => isObject(v) && Object.keys(v).every((k) => keys.includes(k));
const own = (v: unknown, key: string): unknown => (isObject(v) && Object.hasOwn(v, key) ? v[key] : undefined);

/** What wal-push needs, when the config states it plainly (defaults as in the schema); else undefined. */
export function walPushSettings(raw: unknown, cluster: string): WalPushSettings | undefined {
  if (!CLUSTER_NAME.test(cluster) || !onlyKnown(raw, KNOWN.top)) return undefined;
  const config = raw as {
    clusters?: Record<string, { repository?: unknown }>;
    repositories?: Record<string, { type?: unknown; path?: unknown }>;
    compression?: { algorithm?: unknown; level?: unknown };
    walPush?: { async?: unknown; spoolDirectory?: unknown; processes?: unknown; waitSeconds?: unknown };
    encryption?: { recipients?: unknown };
  };
  const c = own(config.clusters, cluster) as { repository?: unknown } | undefined;
  if (!onlyKnown(c, KNOWN.cluster)) return undefined;
  if (config.compression !== undefined && !onlyKnown(config.compression, KNOWN.compression)) return undefined;
  if (config.encryption !== undefined && !onlyKnown(config.encryption, KNOWN.encryption)) return undefined;
  const walPush = config.walPush;
  if (walPush !== undefined && !plainWalPush(walPush)) return undefined;
  const repositoryName = c!.repository ?? 'local';
  const repo =
    typeof repositoryName === 'string'
      ? (own(config.repositories, repositoryName) as { type?: unknown; path?: unknown } | undefined)
      : undefined;
  if (!onlyKnown(repo, KNOWN.localRepository)) return undefined;
  if (repo!.type !== 'local' || typeof repo!.path !== 'string' || !repo!.path) return undefined;
  const algorithm = config.compression?.algorithm ?? 'zstd';
  const level = config.compression?.level ?? 1;
  if (
    (algorithm !== 'zstd' && algorithm !== 'none') ||
    typeof level !== 'number' ||
    !Number.isInteger(level) ||
    level < 1 ||
    level > 19
  )
    return undefined;
  let recipients: string[] | undefined;
  if (config.encryption !== undefined) {
    const r = config.encryption?.recipients;
    if (!Array.isArray(r) || r.length === 0 || !r.every((f) => typeof f === 'string' && f.length > 0)) return undefined;
    recipients = r as string[];
  }
  return {
    archiveDir: walArchiveDir(repo!.path, cluster),
    compression: { algorithm, level },
    recipients,
    async: asyncPushSettings(walPush, cluster),
  };
}

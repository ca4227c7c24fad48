// The server's output during a recovery: where this start's part of each log begins, reading it back,
// and the recovery log kept for the operator.
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, open, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import type { ClusterConfig } from '../../config/index.js';
import { writeFileAtomic } from '../../host/atomicFile.js';
import { serverTool } from './server.js';
import type { RecoveryPlan } from './types.js';

/** How much of one log file an error or the kept recovery log carries (its end). */
const LOG_READ_BYTES = 8 * 1024 * 1024;

/**
 * This run's recovery log, outside the work directory so it outlives it: in place
 * `<dataDirectory>.pitr-<id>.log` beside the moved-aside directory; a rehearsal's
 * `<work directory>.log` (removed with the work directory when the rehearsal succeeds).
 */
export const recoveryLogOf = (plan: RecoveryPlan) =>
  plan.mode === 'in-place' ? `${plan.asideDirectory.replace('.pre-pitr-', '.pitr-')}.log` : `${plan.workDirectory}.log`;

/** Makes sure the server, as the data directory's owner, can append to `file`; returns where this start's output begins. */
export async function prepareLog(file: string, owner: { uid: number; gid: number }): Promise<number> {
  await mkdir(dirname(file), { recursive: true });
  const created = !existsSync(file); // an existing log keeps its owner and group (e.g. postgres:adm)
  await (await open(file, 'a', 0o600)).close();
  if (created && process.getuid?.() === 0) await chown(file, owner.uid, owner.gid);
  return (await stat(file)).size;
}

/**
 * The size of each file in the server's log_directory before it starts: a logging collector
 * appends to an existing file of the same name (a fixed or day-named log_filename, a file carried
 * in the base backup), and what is already there is an earlier run's, not this start's.
 */
export async function collectorOffsets(clusterConfig: ClusterConfig, dataDir: string): Promise<Record<string, number>> {
  const r = await serverTool('postgres', clusterConfig, dataDir, ['-C', 'log_directory'], { reject: false });
  const setting = r.exitCode === 0 ? String(r.stdout).trim() : '';
  if (!setting) return {};
  const dir = isAbsolute(setting) ? setting : join(dataDir, setting);
  const offsets: Record<string, number> = {};
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const info = await stat(join(dir, name)).catch(() => undefined);
    if (info?.isFile()) offsets[join(dir, name)] = info.size;
  }
  return offsets;
}

/**
 * What the server logged since it was started: pg_ctl's log file from `offset` on and, when its
 * logging_collector is on, the collector's current files (named in `current_logfiles`, written
 * by this start: a stale one copied with the base backup is older), each from its size before the start.
 */
export async function readServerLog(
  dataDir: string,
  logFile: string,
  offset: number,
  since: number,
  collected: Record<string, number> = {},
): Promise<string> {
  const parts = [await readLogPart(logFile, offset)];
  const current = join(dataDir, 'current_logfiles');
  const fresh = (await stat(current).catch(() => undefined))?.mtimeMs ?? 0;
  if (fresh >= since - 2000) {
    for (const line of (await readFile(current, 'utf8').catch(() => '')).split('\n')) {
      const name = line.slice(line.indexOf(' ') + 1).trim();
      if (!line.includes(' ') || !name) continue;
      const file = isAbsolute(name) ? name : join(dataDir, name);
      // A file shorter than it was was truncated (log_truncate_on_rotation): all of it is new.
      const from = collected[file] ?? 0;
      const size = (await stat(file).catch(() => undefined))?.size ?? 0;
      parts.push(`--- ${file} ---\n${await readLogPart(file, size < from ? 0 : from)}`);
    }
  }
  return parts.join('\n');
}

/** In place, the recovery log is written beside the moved-aside directory (again by a retry); a rehearsal's server writes it itself. Returns its path. */
export async function keepRecoveryLog(plan: RecoveryPlan, text: string): Promise<string> {
  const file = recoveryLogOf(plan);
  if (plan.mode === 'in-place') {
    await writeFileAtomic(file, text);
    await chmod(file, 0o600); // a log can quote statements and their data
  }
  return file;
}

export function recoveryStopLine(text: string): string | undefined {
  const lines = text.split('\n').reverse();
  // Where it stopped says the most; else how far the WAL went.
  const line =
    lines.find((l) => /recovery stopping/.test(l)) ??
    lines.find((l) => /last completed transaction|redo done at/.test(l));
  return line?.replace(/^.*?(LOG|FATAL):\s+/, '');
}

export function logTail(text: string): string {
  const lines = text.trim().split('\n');
  return (
    lines
      .filter((l) => /FATAL|PANIC|ERROR/.test(l))
      .slice(-3)
      .join(' | ') || lines.slice(-3).join(' | ')
  ).slice(0, 1500);
}

/** A log file from `offset` on (its last LOG_READ_BYTES at most); empty when it is missing. */
async function readLogPart(file: string, offset: number): Promise<string> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return '';
  try {
    const size = (await handle.stat()).size;
    const from = Math.max(offset, size - LOG_READ_BYTES, 0);
    const buffer = Buffer.alloc(Math.max(size - from, 0));
    await handle.read(buffer, 0, buffer.length, from);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

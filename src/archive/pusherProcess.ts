// One pusher per spool (pushAsync.ts): the lock that says which process pushes, and the start of
// a pusher by the archive_command that finds none running. Built-ins only, like wal-push;
// child_process and crypto are loaded when used (a wal-get served from the spool needs neither).
import { closeSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { processStartTime } from '../host/processStart.js';
import type { PusherJob } from './settings.js';
import { LOCK, LOG, readAnswer } from './spool.js';

/** A built-in module loaded where it is used, synchronously (process.getBuiltinModule needs Node 22.3). */
export const builtin = createRequire(import.meta.url) as <T extends 'node:child_process' | 'node:crypto'>(
  id: T,
) => T extends 'node:child_process' ? typeof import('node:child_process') : typeof import('node:crypto');

/** A pusher that has not taken its lock this long after it was started is started again. */
const SPAWN_RETRY_MS = 5_000;

let spawnedAt = 0;

/** Starts a pusher unless one with this job runs; one with other settings (the config changed) is stopped first. */
export function ensurePusher(job: PusherJob): void {
  const spool = job.settings.async.spoolDirectory;
  const holder = lockHolder(join(spool, LOCK));
  if (holder) {
    if (holder.job !== jobKey(job)) process.kill(holder.pid, 'SIGTERM'); // the next check starts the right one
    return;
  }
  if (Date.now() - spawnedAt < SPAWN_RETRY_MS) return; // one is starting
  spawnedAt = Date.now();
  spawnDetached(join(spool, LOG), ['wal-push-daemon', JSON.stringify(job)]);
}

/**
 * Starts `pgwarden <args>` in the background, detached from this short process, its output to
 * `log`: the same Node and entry point as this process (built code, or the sources through tsx).
 */
export function spawnDetached(log: string, args: string[]): void {
  const fd = openSync(log, 'a', 0o600);
  try {
    const { spawn } = builtin('node:child_process');
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...args], {
      detached: true,
      stdio: ['ignore', fd, fd],
      cwd: process.cwd(), // the data directory, as for archive_command: relative paths in the config stay right
    });
    child.unref();
  } finally {
    closeSync(fd);
  }
}

export interface Lock {
  pid: number;
  /** The process's start time (/proc/<pid>/stat), so that a reused pid is not taken for the pusher. */
  started: string;
  /** jobKey() of what it pushes. */
  job: string;
}

export const jobKey = (job: object): string =>
  builtin('node:crypto').createHash('sha256').update(JSON.stringify(job)).digest('hex');

/** The lock's holder while that very process lives, else undefined. */
export function lockHolder(lock: string): Lock | undefined {
  const held = readAnswer<Lock>(lock);
  if (!held || !Number.isInteger(held.pid) || held.pid <= 0) return undefined;
  return processStartTime(held.pid) === held.started ? held : undefined;
}

/**
 * Creates the lock (O_EXCL: of two pushers started together one runs); the lock of a process that
 * is gone is taken over. Only one pusher may write the archive: the pushes of two would interleave
 * the data and record of one file. PostgreSQL runs one archive_command at a time, which starts a
 * pusher only when none holds the lock, and not again while one is starting.
 */
export function claimLock(lock: string, job: string): boolean {
  const content = JSON.stringify({
    pid: process.pid,
    started: processStartTime(process.pid) ?? '',
    job,
  } satisfies Lock);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lock, content, { flag: 'wx', mode: 0o600 });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (lockHolder(lock)) return false;
      rmSync(lock, { force: true });
    }
  }
  return false;
}

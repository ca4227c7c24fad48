// Asynchronous wal-push (config `walPush.async`), pgBackRest's archive-async model: PostgreSQL's
// archiver runs archive_command for one WAL file at a time and waits, so on a busy cluster the
// archive falls behind by the time each push takes. Here a pusher process, started by the first
// archive_command that finds none running, archives every file PostgreSQL has marked ready
// (pg_wal/archive_status/<name>.ready), `processes` at a time, ahead of the archiver; the
// archive_command itself only waits for the pusher's answer, so it answers in about the time Node
// takes to start.
//
// Nothing is acknowledged that is not archived. The pusher's `<spool>/<name>.ok` names the file
// it archived (device, inode, size, mtime: PostgreSQL never changes a segment it has marked ready)
// and the sha256 it found; archive_command accepts it only for its own file, and only if the
// archive's record (written last, after the data is fsynced) has that sha256 and its data is in
// place. A failure is left as `<spool>/<name>.error` and reported by the archive_command, once; the
// pusher tries that file again only after that. Built-ins only, like wal-push.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ErrorType } from '../lib/errorTypes.js';
import { mapLimit } from '../lib/mapLimit.js';
import { isWalFileName } from '../lib/wal.js';
import { pushWalFile, readRecord, WalPushError, type PushResult, type WalPushSettings } from './walPush.js';

export interface AsyncPushSettings {
  /** Where the pusher keeps its lock, log and the failures it has to report. */
  spoolDirectory: string;
  /** Files pushed at a time. */
  processes: number;
  /** How long an archive_command waits for its file before it fails (PostgreSQL then retries). */
  waitSeconds: number;
}

/** What the pusher is started with (argv of `pgwarden wal-push-daemon`: paths, no secrets). */
export interface PusherJob {
  settings: WalPushSettings & { async: AsyncPushSettings };
  /** The cluster's pg_wal directory. */
  pgWal: string;
}

/** From the config's `walPush` section (validated by zod, or plainly by the fast path); undefined when off. */
export function asyncPushSettings(walPush: { async?: boolean; spoolDirectory?: string; processes?: number; waitSeconds?: number } | undefined, cluster: string): AsyncPushSettings | undefined {
  if (!walPush?.async) return undefined;
  return {
    spoolDirectory: walPush.spoolDirectory ?? join(tmpdir(), `pgwarden-spool-${cluster}`),
    processes: walPush.processes ?? 2,
    waitSeconds: walPush.waitSeconds ?? 60,
  };
}

const POLL_MS = 10;
const PUSHER_CHECK_MS = 500;
const PUSHER_IDLE_MS = 10_000;
const LOCK = 'pusher.pid';
const LOCK_STALE_MS = 30_000;
const LOG = 'pusher.log';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const errorFile = (spool: string, name: string) => join(spool, `${name}.error`);
const okFile = (spool: string, name: string) => join(spool, `${name}.ok`);

/** The pusher's answer for a file it archived. */
interface Acknowledgement {
  /** identity() of the file it read. */
  file: string;
  rawSha256: string;
}

/** archive_command: pushes the file now, or in asynchronous mode waits until the pusher has. */
export function archiveWalFile(settings: WalPushSettings, source: string, name: string): Promise<PushResult> {
  return settings.async ? pushWalFileAsync({ ...settings, async: settings.async }, source, name) : pushWalFile(settings, source, name);
}

/** Asynchronous mode. A file outside a pg_wal directory (a push by hand) is pushed at once. */
async function pushWalFileAsync(settings: WalPushSettings & { async: AsyncPushSettings }, source: string, name: string): Promise<PushResult> {
  if (!isWalFileName(name)) throw new WalPushError(ErrorType.InvalidInput, `"${name}" is not a WAL file name`);
  const { async } = settings;
  const pgWal = dirname(resolve(source));
  if (!existsSync(join(pgWal, 'archive_status'))) return pushWalFile(settings, source, name);
  mkdirSync(async.spoolDirectory, { recursive: true, mode: 0o700 });
  const file = identity(source);
  const deadline = Date.now() + async.waitSeconds * 1000;
  let checked = 0;
  for (;;) {
    const ok = readAnswer<Acknowledgement>(okFile(async.spoolDirectory, name));
    if (ok) {
      const record = await readRecord(settings.archiveDir, name);
      const present = record && statSync(join(settings.archiveDir, record.stored), { throwIfNoEntry: false })?.size === record.bytes;
      if (ok.file === file && record?.rawSha256 === ok.rawSha256 && present) return { name, outcome: 'stored', bytes: record.bytes, rawSha256: ok.rawSha256 };
      // Of another file under this name (an earlier incarnation), or the archive changed since: push again.
      rmSync(okFile(async.spoolDirectory, name), { force: true });
    }
    const failure = takeFailure(async.spoolDirectory, name);
    if (failure) throw new WalPushError(failure.type, failure.message);
    if (Date.now() > deadline) {
      throw new WalPushError(ErrorType.InvalidInput, `the asynchronous pusher did not archive ${name} within ${async.waitSeconds} s (its log: ${join(async.spoolDirectory, LOG)})`);
    }
    if (Date.now() - checked > PUSHER_CHECK_MS) {
      startPusherUnlessRunning({ settings, pgWal });
      checked = Date.now();
    }
    await sleep(POLL_MS);
  }
}

/** The pusher: archives what PostgreSQL marked ready until nothing has been for a while, then exits. */
export async function runPusher(job: PusherJob): Promise<void> {
  const spool = job.settings.async.spoolDirectory;
  if (!claimLock(join(spool, LOCK))) return; // another one runs
  try {
    let idleSince = Date.now();
    while (Date.now() - idleSince < PUSHER_IDLE_MS) {
      if (!refreshLock(join(spool, LOCK))) return; // taken over (this one was stalled past LOCK_STALE_MS): one pusher only
      const ready = readyFiles(job.pgWal);
      dropStaleAnswers(spool, ready);
      const todo = ready.filter((n) => !existsSync(okFile(spool, n)) && !existsSync(errorFile(spool, n)));
      if (todo.length === 0) {
        await sleep(100);
        continue;
      }
      await mapLimit(todo.slice(0, 4 * job.settings.async.processes), job.settings.async.processes, async (name) => {
        try {
          const source = join(job.pgWal, name);
          const file = identity(source);
          const { rawSha256 } = await pushWalFile(job.settings, source, name);
          // Kept until PostgreSQL no longer waits for the file (dropStaleAnswers): the answer stands.
          writeAtomic(okFile(spool, name), JSON.stringify({ file, rawSha256 } satisfies Acknowledgement));
          refreshLock(join(spool, LOCK));
        } catch (err) {
          const type = err instanceof WalPushError ? err.type : ErrorType.InvalidInput;
          const message = (err as Error).message;
          console.error(`${new Date().toISOString()} ${name}: ${message}`);
          writeAtomic(errorFile(spool, name), JSON.stringify({ type, message }));
        }
      });
      idleSince = Date.now();
    }
  } finally {
    if (lockHolder(join(spool, LOCK)) === process.pid) rmSync(join(spool, LOCK), { force: true });
  }
}

/** Ready files in the order PostgreSQL archives them: timeline history first, then oldest first. */
export function readyFiles(pgWal: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(join(pgWal, 'archive_status'));
  } catch {
    return [];
  }
  const names = entries.filter((f) => f.endsWith('.ready')).map((f) => f.slice(0, -'.ready'.length)).filter(isWalFileName);
  const history = (n: string) => (n.endsWith('.history') ? 0 : 1);
  return names.sort((a, b) => history(a) - history(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** The identity of a file as it is now: a different file, or the same one changed, has another. */
function identity(path: string): string {
  const st = statSync(path);
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
}

function readAnswer<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function takeFailure(spool: string, name: string): { type: ErrorType; message: string } | undefined {
  const file = errorFile(spool, name);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  rmSync(file, { force: true }); // reported once; the pusher tries again after that
  try {
    return JSON.parse(text) as { type: ErrorType; message: string };
  } catch {
    return { type: ErrorType.InvalidInput, message: `unreadable pusher failure for ${name}` };
  }
}

/** Answers about files PostgreSQL no longer waits for (archived since, or gone) are nobody's. */
function dropStaleAnswers(spool: string, ready: string[]): void {
  const waiting = new Set(ready);
  for (const f of readdirSync(spool)) {
    const m = /^(.*)\.(ok|error)$/.exec(f);
    if (m && !waiting.has(m[1]!)) rmSync(join(spool, f), { force: true });
  }
}

function startPusherUnlessRunning(job: PusherJob): void {
  if (lockHolder(join(job.settings.async.spoolDirectory, LOCK)) !== undefined) return;
  const log = openSync(join(job.settings.async.spoolDirectory, LOG), 'a', 0o600);
  try {
    // The same Node and entry point as this process (built code, or the sources through tsx).
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'wal-push-daemon', JSON.stringify(job)], {
      detached: true,
      stdio: ['ignore', log, log],
      cwd: process.cwd(), // the data directory, as for archive_command: relative paths in the config stay right
    });
    child.unref();
  } finally {
    closeSync(log);
  }
}

/**
 * The live pid in a lock file, or undefined: none, unreadable, its process gone, or not refreshed
 * for LOCK_STALE_MS (a reused pid must not pass for the pusher and stall archiving).
 */
function lockHolder(lock: string): number | undefined {
  let pid: number;
  try {
    if (Date.now() - statSync(lock).mtimeMs > LOCK_STALE_MS) return undefined;
    pid = Number(readFileSync(lock, 'utf8'));
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/**
 * Creates the lock with this pid (O_EXCL: of two pushers started together one runs); a stale lock
 * is taken over. Only one pusher may write the archive: the pushes of two would interleave the data
 * and record of one file. PostgreSQL runs one archive_command at a time, which starts a pusher only
 * when none holds the lock.
 */
function claimLock(lock: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx', mode: 0o600 });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (lockHolder(lock) !== undefined) return false;
      rmSync(lock, { force: true });
    }
  }
  return false;
}

/** Marks the lock fresh; false when it is no longer this process's. */
function refreshLock(lock: string): boolean {
  try {
    if (Number(readFileSync(lock, 'utf8')) !== process.pid) return false;
    const now = new Date();
    utimesSync(lock, now, now);
    return true;
  } catch {
    return false;
  }
}

function writeAtomic(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

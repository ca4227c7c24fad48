// The asynchronous pusher's spool (pushAsync.ts): its lock and log, and the answers it leaves for
// archive_command — `<name>.ok` for a file it archived, `<name>.error` for one it could not.
// Built-ins only, like wal-push.
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ErrorType } from '../lib/errorTypes.js';
import { WalPushError } from './walPushError.js';

export const LOCK = 'pusher.pid';
export const LOG = 'pusher.log';

export const errorFile = (spool: string, name: string) => join(spool, `${name}.error`);
export const okFile = (spool: string, name: string) => join(spool, `${name}.ok`);

/** The pusher's answer for a file it archived. */
export interface Acknowledgement {
  /** identity() of the file it read. */
  file: string;
  rawSha256: string;
}

/** The pusher's answer for a file it could not archive. */
export interface Failure {
  file: string;
  type: ErrorType;
  message: string;
}

export function readAnswer<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The pusher's failure for this very file, taken (reported once); one about another file under the name is dropped. */
export function takeFailure(spool: string, name: string, file: string): Failure | undefined {
  const path = errorFile(spool, name);
  const failure = readAnswer<Failure>(path);
  if (!failure) return undefined;
  rmSync(path, { force: true }); // the pusher tries again after this
  return failure.file === file ? failure : undefined;
}

/** Answers about files PostgreSQL no longer waits for (archived since, or gone) are nobody's. */
export function dropStaleAnswers(spool: string, ready: string[]): void {
  const waiting = new Set(ready);
  for (const f of readdirSync(spool)) {
    const m = /^(.*)\.(ok|error)$/.exec(f);
    if (m && !waiting.has(m[1]!)) rmSync(join(spool, f), { force: true });
  }
}

/**
 * The spool is this user's alone (its lock, answers and log decide what PostgreSQL is told): it and
 * the directory above it must belong to this user (or root) and be closed to everyone else.
 */
export function openSpool(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const uid = process.getuid?.();
  for (const d of [dir, dirname(dir)]) {
    const st = lstatSync(d);
    const owner = st.uid === uid || st.uid === 0;
    if (
      !st.isDirectory() ||
      !owner ||
      (st.mode & 0o022) !== 0 ||
      (d === dir && (st.uid !== uid || (st.mode & 0o077) !== 0))
    ) {
      throw new WalPushError(
        ErrorType.InvalidInput,
        `spool directory ${dir}: ${d} must be a directory of uid ${uid} (the spool itself mode 0700), writable by nobody else`,
      );
    }
  }
}

export function writeAtomic(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

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
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ErrorType } from '../lib/errorTypes.js';
import { mapLimit } from '../lib/mapLimit.js';
import { isWalFileName } from '../lib/wal.js';
import { removeLeftoverGpgHomes } from './gpgHomes.js';
import { pushWalFile, readRecord, WalPushError, type PushResult } from './push.js';
import { claimLock, ensurePusher, jobKey, lockHolder } from './pusherProcess.js';
import type { AsyncPushSettings, PusherJob, WalPushSettings } from './settings.js';
import {
  dropStaleAnswers,
  errorFile,
  LOCK,
  LOG,
  okFile,
  openSpool,
  readAnswer,
  takeFailure,
  writeAtomic,
  type Acknowledgement,
  type Failure,
} from './spool.js';

const POLL_MS = 10;
const PUSHER_CHECK_MS = 500;
const PUSHER_IDLE_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** archive_command: pushes the file now, or in asynchronous mode waits until the pusher has. */
export function archiveWalFile(settings: WalPushSettings, source: string, name: string): Promise<PushResult> {
  return settings.async
    ? pushWalFileAsync({ ...settings, async: settings.async }, source, name)
    : pushWalFile(settings, source, name);
}

/** Asynchronous mode. A file outside a pg_wal directory (a push by hand) is pushed at once. */
async function pushWalFileAsync(
  settings: WalPushSettings & { async: AsyncPushSettings },
  source: string,
  name: string,
): Promise<PushResult> {
  if (!isWalFileName(name)) throw new WalPushError(ErrorType.InvalidInput, `"${name}" is not a WAL file name`);
  const { async } = settings;
  const pgWal = dirname(resolve(source));
  if (!existsSync(join(pgWal, 'archive_status'))) return pushWalFile(settings, source, name);
  openSpool(async.spoolDirectory);
  const file = identity(source);
  const job: PusherJob = { settings, pgWal };
  const deadline = Date.now() + async.waitSeconds * 1000;
  let checked = 0;
  for (;;) {
    const ok = readAnswer<Acknowledgement>(okFile(async.spoolDirectory, name));
    if (ok) {
      const record = await readRecord(settings.archiveDir, name);
      const present =
        record && statSync(join(settings.archiveDir, record.stored), { throwIfNoEntry: false })?.size === record.bytes;
      if (ok.file === file && record?.rawSha256 === ok.rawSha256 && present)
        return { name, outcome: 'stored', bytes: record.bytes, rawSha256: ok.rawSha256 };
      // Of another file under this name (an earlier incarnation), or the archive changed since: push again.
      rmSync(okFile(async.spoolDirectory, name), { force: true });
    }
    const failure = takeFailure(async.spoolDirectory, name, file);
    if (failure) throw new WalPushError(failure.type, failure.message);
    if (Date.now() > deadline) {
      throw new WalPushError(
        ErrorType.InvalidInput,
        `the asynchronous pusher did not archive ${name} within ${async.waitSeconds} s (its log: ${join(async.spoolDirectory, LOG)})`,
      );
    }
    if (Date.now() - checked > PUSHER_CHECK_MS) {
      ensurePusher(job);
      checked = Date.now();
    }
    await sleep(POLL_MS);
  }
}

/** The pusher: archives what PostgreSQL marked ready until nothing has been for a while, then exits. */
export async function runPusher(job: PusherJob): Promise<void> {
  const spool = job.settings.async.spoolDirectory;
  const lock = join(spool, LOCK);
  if (!claimLock(lock, jobKey(job))) return; // another one runs
  const owned = () => lockHolder(lock)?.pid === process.pid;
  for (const gone of removeLeftoverGpgHomes())
    console.error(`${new Date().toISOString()} removed ${gone}, left by a push that died`);
  try {
    let idleSince = Date.now();
    while (Date.now() - idleSince < PUSHER_IDLE_MS && owned()) {
      const ready = readyFiles(job.pgWal);
      dropStaleAnswers(spool, ready);
      const todo = ready.filter((n) => !existsSync(okFile(spool, n)) && !existsSync(errorFile(spool, n)));
      if (todo.length === 0) {
        await sleep(100);
        continue;
      }
      await mapLimit(todo.slice(0, 4 * job.settings.async.processes), job.settings.async.processes, async (name) => {
        if (!owned()) return; // stopped for a pusher with other settings: it pushes from now on
        const source = join(job.pgWal, name);
        let file = '';
        try {
          file = identity(source);
          const { rawSha256 } = await pushWalFile(job.settings, source, name);
          // Kept until PostgreSQL no longer waits for the file (dropStaleAnswers): the answer stands.
          writeAtomic(okFile(spool, name), JSON.stringify({ file, rawSha256 } satisfies Acknowledgement));
        } catch (err) {
          const type = err instanceof WalPushError ? err.type : ErrorType.InvalidInput;
          const message = (err as Error).message;
          console.error(`${new Date().toISOString()} ${name}: ${message}`);
          try {
            writeAtomic(errorFile(spool, name), JSON.stringify({ file, type, message } satisfies Failure));
          } catch (e) {
            console.error(
              `${new Date().toISOString()} cannot leave the failure of ${name} in ${spool}: ${(e as Error).message}`,
            );
          }
        }
      });
      idleSince = Date.now();
    }
  } finally {
    if (owned()) rmSync(lock, { force: true });
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
  const names = entries
    .filter((f) => f.endsWith('.ready'))
    .map((f) => f.slice(0, -'.ready'.length))
    .filter(isWalFileName);
  const history = (n: string) => (n.endsWith('.history') ? 0 : 1);
  return names.sort((a, b) => history(a) - history(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** The identity of a file as it is now: a different file, or the same one changed, has another. */
function identity(path: string): string {
  const st = statSync(path);
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
}

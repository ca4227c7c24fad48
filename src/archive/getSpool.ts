// The asynchronous wal-get's spool (walGet.async): the segments the fetcher
// (src/storage/walPrefetch.ts) decoded ahead of recovery, each beside a sidecar `<name>.sha256`
// with the sha256 of its bytes and the archive it came from; `<name>.error` for one it could not
// decode; `wanted`, the segment recovery asks for next, from which the fetcher counts ahead; the
// fetcher's lock and log. Built-ins only: the restore_command that finds its segment here loads
// nothing else.
import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { walRecordName } from '../lib/layout.js';
import { SEGMENT_NAME, parseSegmentName, segmentName } from '../lib/wal.js';
import type { AsyncGetSettings } from './settings.js';
import { jobKey, lockHolder, spawnDetached } from './pusherProcess.js';
import { openSpool, readAnswer, writeAtomic } from './spool.js';

export const FETCHER_LOCK = 'fetcher.pid';
export const FETCHER_LOG = 'fetcher.log';
const WANTED = 'wanted';
/** Written when a fetcher is started, so that the calls while it loads do not start more. */
const STARTING = 'fetcher.starting';
const STARTING_MS = 10_000;

/** What a fetcher is started with (argv of `pgwarden wal-get-fetcher`: paths, no secrets). */
export interface FetcherJob extends AsyncGetSettings {
  /** The config file, absolute: the fetcher reads the decryption key's settings from it. */
  config: string;
  cluster: string;
  archiveDir: string;
}

/** The sidecar of a spooled segment. */
export interface Spooled {
  sha256: string;
  archiveDir: string;
}

const sidecar = (spool: string, name: string) => join(spool, `${name}.sha256`);

/**
 * wal-get's asynchronous side, for a segment the archive has: tells the fetcher where recovery is
 * (starting one when none runs) and takes the segment from the spool, waiting while the fetcher
 * decodes it; false when it cannot (no fetcher, the fetcher failed on it, a corrupt spooled file,
 * WAIT_MS passed): the caller then fetches it itself. History files, `.partial` and `.backup` files
 * are never prefetched (false): what follows a timeline switch is not guessed.
 */
export async function getFromSpool(job: FetcherJob, name: string, destination: string): Promise<boolean> {
  if (!parseSegmentName(name) || !existsSync(join(job.archiveDir, walRecordName(name)))) return false;
  openSpool(job.spoolDirectory);
  writeAtomic(join(job.spoolDirectory, WANTED), name);
  ensureFetcher(job);
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const taken = takeSpooled(job, name, destination);
    if (taken) {
      // Recovery asks for the next one next: the fetcher counts from there (not this one again).
      const { timeline, segment } = parseSegmentName(name)!;
      writeAtomic(join(job.spoolDirectory, WANTED), segmentName(timeline, segment + 1n));
    }
    if (taken !== undefined) return taken;
    if (existsSync(failedFile(job.spoolDirectory, name)) || !fetcherRunning(job) || Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** How long wal-get waits for the fetcher to decode its segment before it decodes the segment itself. */
const WAIT_MS = 30_000;

/** The fetcher's mark for a segment it could not decode (wal-get then fetches it itself and reports why). */
export const failedFile = (spool: string, name: string) => join(spool, `${name}.error`);

/**
 * Moves a spooled segment to `destination` if its bytes hash to what its sidecar says (true); a
 * corrupt one is removed (false); undefined while it is not spooled.
 */
function takeSpooled(job: FetcherJob, name: string, destination: string): boolean | undefined {
  const file = join(job.spoolDirectory, name);
  const side = readAnswer<Spooled>(sidecar(job.spoolDirectory, name));
  if (!side || side.archiveDir !== job.archiveDir) return undefined;
  let sha256: string;
  try {
    sha256 = sha256Of(file);
  } catch {
    return undefined; // not spooled yet, or the fetcher cleared it as it left
  }
  if (sha256 !== side.sha256) {
    console.error(
      `pgwarden: spooled ${name} is corrupt (sha256 ${sha256}, expected ${side.sha256}): fetching it again`,
    );
    removeSpooled(job.spoolDirectory, name);
    return false;
  }
  try {
    renameSync(file, destination);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    // The spool is on another filesystem than pg_wal: a copy, then the spooled file goes.
    copyFileSync(file, `${destination}.tmp`);
    renameSync(`${destination}.tmp`, destination);
    rmSync(file, { force: true });
  }
  rmSync(sidecar(job.spoolDirectory, name), { force: true });
  return true;
}

/** The sha256 of a file, read through one 1 MiB buffer (a fresh 16 MiB one costs more than the digest). */
function sha256Of(file: string): string {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(file, 'r');
  try {
    for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0;) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

export function removeSpooled(spool: string, name: string): void {
  rmSync(join(spool, name), { force: true });
  rmSync(sidecar(spool, name), { force: true });
}

/** The segment recovery asked for last, if any. */
export function wantedSegment(spool: string): string | undefined {
  try {
    const name = readFileSync(join(spool, WANTED), 'utf8');
    return parseSegmentName(name) ? name : undefined;
  } catch {
    return undefined;
  }
}

/** Spools a decoded segment: the bytes under a temporary name, the sidecar, then the rename. */
export function spool(job: FetcherJob, name: string, data: Uint8Array, sha256: string): void {
  const file = join(job.spoolDirectory, name);
  writeFileSync(`${file}.tmp`, data, { mode: 0o600 });
  writeAtomic(
    sidecar(job.spoolDirectory, name),
    JSON.stringify({ sha256, archiveDir: job.archiveDir } satisfies Spooled),
  );
  renameSync(`${file}.tmp`, file);
}

/**
 * Removes spooled segments recovery has gone past (`before`, any timeline) or all of them, and the
 * temporary files of a fetcher that was killed.
 */
export function clearSpool(spool: string, before?: bigint): void {
  for (const f of readdirSync(spool)) {
    if (f.endsWith('.tmp')) rmSync(join(spool, f), { force: true });
    const m = /^([0-9A-F]{24})(\.sha256|\.error)?$/.exec(f);
    if (!m || !SEGMENT_NAME.test(m[1]!)) continue;
    const segment = parseSegmentName(m[1]!)?.segment;
    if (before === undefined || segment === undefined || segment < before) rmSync(join(spool, f), { force: true });
  }
}

/** A fetcher holds the spool's lock, or one was started moments ago. */
function fetcherRunning(job: FetcherJob): boolean {
  if (lockHolder(join(job.spoolDirectory, FETCHER_LOCK))) return true;
  try {
    return Date.now() - statSync(join(job.spoolDirectory, STARTING)).mtimeMs < STARTING_MS;
  } catch {
    return false;
  }
}

/** Starts a fetcher unless one with this job runs (or is starting); one with another job is stopped. */
export function ensureFetcher(job: FetcherJob): void {
  const holder = lockHolder(join(job.spoolDirectory, FETCHER_LOCK));
  if (holder) {
    if (holder.job !== jobKey(job)) process.kill(holder.pid, 'SIGTERM'); // the next call starts the right one
    return;
  }
  const starting = join(job.spoolDirectory, STARTING);
  try {
    if (Date.now() - statSync(starting).mtimeMs < STARTING_MS) return;
  } catch {
    // none starting
  }
  writeFileSync(starting, '', { mode: 0o600 });
  spawnDetached(join(job.spoolDirectory, FETCHER_LOG), [
    '--config',
    job.config,
    'wal-get-fetcher',
    JSON.stringify(job),
  ]);
}

/** Called by the fetcher once it holds the lock. */
export const fetcherStarted = (spool: string) => rmSync(join(spool, STARTING), { force: true });

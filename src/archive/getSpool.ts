// The asynchronous wal-get's spool (walGet.async): the segments the fetcher
// (src/storage/walPrefetch.ts) decoded ahead of recovery, each beside a sidecar `<name>.sha256`
// with the sha256 of its bytes and the archive it came from; `<name>.error` for one it could not
// decode; `wanted`, the segment recovery asks for next, from which the fetcher counts ahead; the
// fetcher's lock and log. Built-ins only: the restore_command that finds its segment here loads
// nothing else.
//
// A spooled segment is served by rename without hashing it again when it is the very file the
// fetcher left: the fetcher writes it under a temporary name only after its bytes hashed to the
// archive record's sha256, renames it into place, and only then writes the sidecar naming that
// file (device, inode, size, mtime and ctime in nanoseconds, and the boot). Nothing but the
// PostgreSQL user and root can write in the spool (0700, checked by openSpool); any write to the
// file, a chmod or another file renamed in its place changes its ctime or inode, and a file
// spooled before a crash is from another boot. Any of these, and the file is hashed again.
import {
  closeSync,
  copyFileSync,
  existsSync,
  linkSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { walRecordName } from '../lib/layout.js';
import { SEGMENT_NAME, parseSegmentName, segmentName } from '../lib/wal.js';
import type { AsyncGetSettings } from './settings.js';
import { builtin, lockHolder, spawnDetached } from './pusherProcess.js';
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
  /** fileIdentity() of the spooled file as the fetcher left it, once checked. */
  file?: string;
}

/** The fetcher's lock names its job by this key (the job's paths, no secrets; no hash to load crypto for). */
export const fetcherKey = (job: FetcherJob): string => JSON.stringify(job);

let bootId: string | undefined;
/**
 * Which file this is, as the filesystem says (device, inode, size, mtime, ctime in ns) and in
 * which boot; undefined when it is not there.
 */
export function fileIdentity(file: string): string | undefined {
  const st = statSync(file, { bigint: true, throwIfNoEntry: false });
  if (!st) return undefined;
  try {
    bootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    bootId = `unknown-${process.pid}-${Date.now()}`; // no boot id: never the fetcher's, always hashed
  }
  return [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs, bootId].join(':');
}

const sidecar = (spool: string, name: string) => join(spool, `${name}.sha256`);

/**
 * wal-get's asynchronous side, for a segment the archive has: tells the fetcher where recovery is
 * (starting one when none runs) and takes the segment from the spool, waiting while the fetcher
 * decodes it; false when it cannot (no fetcher, the fetcher failed on it, a corrupt spooled file,
 * WAIT_MS passed): the caller then fetches it itself. History files, `.partial` and `.backup` files
 * are never prefetched (false): what follows a timeline switch is not guessed.
 */
export async function getFromSpool(
  job: FetcherJob,
  name: string,
  destination: string,
  source: ConfigSource = { overrides: true },
): Promise<boolean> {
  if (!parseSegmentName(name) || !existsSync(join(job.archiveDir, walRecordName(name)))) return false;
  openSpool(job.spoolDirectory);
  writeAtomic(join(job.spoolDirectory, SERVING), servingFor(job, source));
  writeAtomic(join(job.spoolDirectory, WANTED), name);
  ensureFetcher(job);
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const taken = takeSpooled(job, name, destination);
    if (taken !== undefined) return taken;
    if (existsSync(failedFile(job.spoolDirectory, name)) || !fetcherRunning(job) || Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Where the job's settings came from: the config file as it was before it was read, and the environment. */
export interface ConfigSource {
  /** configIdentity() of the config file, taken before it was read. */
  identity?: string;
  /** PGWARDEN__* overrides were in the environment (the file alone does not say the settings). */
  overrides: boolean;
}

/** Which config file this is (device, inode, size, mtime and ctime in ns), as the script's `stat` prints it. */
export function configIdentity(file: string): string | undefined {
  const st = statSync(file, { bigint: true, throwIfNoEntry: false });
  return st && [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join(':');
}

/** PGWARDEN__* overrides in the environment (src/lib/configOverrides.ts). */
export const hasEnvOverrides = (env: NodeJS.ProcessEnv): boolean =>
  Object.entries(env).some(([k, v]) => k.startsWith('PGWARDEN__') && v !== undefined);

/**
 * For bin/pgwarden-wal-get, the restore_command that serves a spooled segment without Node: whose
 * spool this is (the config file, absolute, and the cluster), the archive its sidecars must name
 * (as JSON writes it), the config file's identity when it was read, and whether environment
 * overrides were in force, one a line. The script serves only while it names its own config and
 * cluster, the config file is still that very file, and no overrides were (or are) in force.
 */
const SERVING = 'serving';
const servingFor = (job: FetcherJob, source: ConfigSource) =>
  `${job.config}\n${job.cluster}\n${JSON.stringify(job.archiveDir)}\n${source.identity ?? 'unknown'}\n` +
  `${source.overrides ? 'overrides' : 'no overrides'}\n`;

/** How long wal-get waits for the fetcher to decode its segment before it decodes the segment itself. */
const WAIT_MS = 30_000;

/** The fetcher's mark for a segment it could not decode (wal-get then fetches it itself and reports why). */
export const failedFile = (spool: string, name: string) => join(spool, `${name}.error`);

/**
 * Moves a spooled segment to `destination` if it is the file the fetcher checked and left, or
 * else if its bytes hash to what its sidecar says (true); a corrupt one is removed (false);
 * undefined while it is not spooled.
 */
function takeSpooled(job: FetcherJob, name: string, destination: string): boolean | undefined {
  const file = join(job.spoolDirectory, name);
  const side = readAnswer<Spooled>(sidecar(job.spoolDirectory, name));
  if (!side || side.archiveDir !== job.archiveDir) return undefined;
  const identity = fileIdentity(file);
  if (!identity) return undefined; // the fetcher cleared it as it left
  let sha256 = side.sha256;
  try {
    if (identity !== side.file) sha256 = sha256Of(file); // changed since it was checked: hashed again
  } catch {
    return undefined; // removed meanwhile
  }
  if (sha256 !== side.sha256) {
    console.error(
      `pgwarden: spooled ${name} is corrupt (sha256 ${sha256}, expected ${side.sha256}): fetching it again`,
    );
    removeSpooled(job.spoolDirectory, name);
    return false;
  }
  // A second name at the destination first: once `wanted` moves on, the fetcher clears the spool's.
  try {
    rmSync(destination, { force: true });
    linkSync(file, destination);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    // The spool is on another filesystem than pg_wal: a copy.
    copyFileSync(file, `${destination}.tmp`);
    renameSync(`${destination}.tmp`, destination);
  }
  // Recovery asks for the next one next: the fetcher counts from there, and does not take this
  // one, gone from the spool a moment later, for one still to decode.
  const { timeline, segment } = parseSegmentName(name)!;
  writeAtomic(join(job.spoolDirectory, WANTED), segmentName(timeline, segment + 1n));
  removeSpooled(job.spoolDirectory, name);
  return true;
}

/** The sha256 of a file, read through one 1 MiB buffer (a fresh 16 MiB one costs more than the digest). */
function sha256Of(file: string): string {
  const hash = builtin('node:crypto').createHash('sha256');
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

/**
 * Spools a decoded segment whose bytes hashed to `sha256`: the bytes under a temporary name, the
 * rename, then the sidecar naming the file in place (a file without its sidecar is never served).
 */
export async function spool(job: FetcherJob, name: string, data: Uint8Array, sha256: string): Promise<void> {
  const file = join(job.spoolDirectory, name);
  rmSync(sidecar(job.spoolDirectory, name), { force: true });
  await writeFile(`${file}.tmp`, data, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
  const spooled: Spooled = { sha256, archiveDir: job.archiveDir, file: fileIdentity(file) };
  writeAtomic(sidecar(job.spoolDirectory, name), JSON.stringify(spooled));
}

/**
 * Removes spooled segments recovery has gone past (`before`, any timeline) or, without `before`,
 * all of them. A fetcher starting (`before` < 0) or leaving (none, its decoders done) also removes
 * the temporary files a fetcher writes (one killed left them); never while its decoders write them.
 */
export function clearSpool(spool: string, before?: bigint): void {
  const temporary = before === undefined || before < 0n;
  for (const f of readdirSync(spool)) {
    // The fetcher's, and `wanted.<pid>` of a bin/pgwarden-wal-get killed before its rename.
    if (/^[0-9A-F]{24}(\.sha256)?\.tmp$|^wanted\.[0-9]+$/.test(f)) {
      if (temporary) rmSync(join(spool, f), { force: true });
      continue;
    }
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
    if (holder.job !== fetcherKey(job)) process.kill(holder.pid, 'SIGTERM'); // the next call starts the right one
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

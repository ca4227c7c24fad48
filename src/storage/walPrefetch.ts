// The fetcher of the asynchronous wal-get (walGet.async): a background process, one per spool,
// started by a restore_command (src/archive/getSpool.ts). It opens the decryption key once and
// decodes the segments after the one recovery asked for last (`wanted`), up to `prefetch` of them,
// into the spool, each with the sha256 its archive record gives the decoded bytes. It stops at a
// segment the archive lacks, never counts past the wanted segment's timeline, leaves a segment it
// cannot decode to the synchronous wal-get (which reports why), and goes when recovery has not
// asked for anything for a while, clearing the spool behind it.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import { parseSegmentName, segmentName } from '../lib/wal.js';
import {
  FETCHER_LOCK,
  clearSpool,
  failedFile,
  fetcherKey,
  fetcherStarted,
  spool,
  wantedSegment,
  type FetcherJob,
} from '../archive/getSpool.js';
import { claimLock, lockHolder } from '../archive/pusherProcess.js';
import { openSpool } from '../archive/spool.js';
import { WalArchive, decodeWal, openWalDecryption, type WalDecryption, type WalRecord } from './walArchive.js';

/** A fetcher recovery has not asked anything of this long leaves. */
const IDLE_MS = 30_000;
const POLL_MS = 20;
/**
 * Segments decoded at a time (decryption and decompression run outside the JavaScript thread): as
 * one is spooled the next starts, so both stay busy while recovery replays.
 */
const DECODERS = 2;

export async function runFetcher(config: Config, job: FetcherJob, env: NodeJS.ProcessEnv): Promise<void> {
  const archive = WalArchive.forCluster(config, job.cluster);
  if (archive.dir !== job.archiveDir) throw new Error(`the config's archive is ${archive.dir}, not ${job.archiveDir}`);
  openSpool(job.spoolDirectory);
  const lock = join(job.spoolDirectory, FETCHER_LOCK);
  const key = fetcherKey(job);
  if (!claimLock(lock, key)) return; // another fetcher serves this spool
  fetcherStarted(job.spoolDirectory);
  let stopping = false;
  process.once('SIGTERM', () => (stopping = true));
  const ours = () => lockHolder(lock)?.pid === process.pid;
  let decryption: WalDecryption | undefined;
  const failed = new Set<string>();
  let lastWanted: string | undefined;
  let activeAt = Date.now();
  const decoding = new Map<string, Promise<void>>();
  try {
    clearSpool(job.spoolDirectory, -1n); // the temporary files of a fetcher that was killed
    while (!stopping && ours() && Date.now() - activeAt < IDLE_MS) {
      const wanted = wantedSegment(job.spoolDirectory);
      if (wanted !== lastWanted) {
        lastWanted = wanted;
        activeAt = Date.now();
      }
      const at = wanted ? parseSegmentName(wanted) : undefined;
      if (!wanted || !at) {
        await sleep(POLL_MS);
        continue;
      }
      clearSpool(job.spoolDirectory, at.segment); // what recovery went past
      // The wanted segment first, then the next ones up to the first the archive lacks, each
      // started as soon as a decoder is free.
      for (let i = 0n; i < BigInt(job.prefetch) && decoding.size < DECODERS; i++) {
        const name = segmentName(at.timeline, at.segment + i);
        if (decoding.has(name) || existsSync(join(job.spoolDirectory, name))) continue;
        if (failed.has(name)) break;
        const record = await archive.record(name).catch(() => undefined);
        if (!record) break; // not archived (yet): nothing past a gap is guessed
        if (record.encrypted) decryption ??= await openWalDecryption(config, env);
        const decoded = fetchOne(job, archive, name, record, decryption).then((ok) => {
          if (ok) activeAt = Date.now();
          else failed.add(name);
          decoding.delete(name);
        });
        decoding.set(name, decoded);
      }
      // Until a decoder is free or recovery asks for another segment.
      await Promise.race([sleep(POLL_MS), ...decoding.values()]);
    }
  } finally {
    await Promise.allSettled(decoding.values());
    await decryption?.keyring.remove();
    if (ours()) {
      clearSpool(job.spoolDirectory);
      rmSync(lock, { force: true });
    }
  }
}

/** Decodes one segment into the spool; false, with the mark wal-get reads, when it cannot. */
async function fetchOne(
  job: FetcherJob,
  archive: WalArchive,
  name: string,
  record: WalRecord,
  decryption: WalDecryption | undefined,
): Promise<boolean> {
  try {
    // Checked end to end once: the decoded bytes against the record's sha256 (decodeWal).
    const raw = await decodeWal(archive, name, decryption, false);
    if (!raw) return false;
    await spool(job, name, raw, record.rawSha256);
    return true;
  } catch (err) {
    const message = (err as Error).message;
    console.error(`pgwarden wal-get fetcher: ${name}: ${message} (wal-get fetches it itself)`);
    writeFileSync(failedFile(job.spoolDirectory, name), message, { mode: 0o600 });
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

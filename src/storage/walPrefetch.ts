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
  fetcherStarted,
  spool,
  wantedSegment,
  type FetcherJob,
} from '../archive/getSpool.js';
import { claimLock, jobKey, lockHolder } from '../archive/pusherProcess.js';
import { openSpool } from '../archive/spool.js';
import { WalArchive, decodeWal, openWalDecryption, type WalDecryption, type WalRecord } from './walArchive.js';

/** A fetcher recovery has not asked anything of this long leaves. */
const IDLE_MS = 30_000;
const POLL_MS = 20;
/** Segments decoded at a time (decryption and decompression run outside the JavaScript thread). */
const DECODERS = 2;

export async function runFetcher(config: Config, job: FetcherJob, env: NodeJS.ProcessEnv): Promise<void> {
  const archive = WalArchive.forCluster(config, job.cluster);
  if (archive.dir !== job.archiveDir) throw new Error(`the config's archive is ${archive.dir}, not ${job.archiveDir}`);
  openSpool(job.spoolDirectory);
  const lock = join(job.spoolDirectory, FETCHER_LOCK);
  const key = jobKey(job);
  if (!claimLock(lock, key)) return; // another fetcher serves this spool
  fetcherStarted(job.spoolDirectory);
  let stopping = false;
  process.once('SIGTERM', () => (stopping = true));
  const ours = () => lockHolder(lock)?.pid === process.pid;
  let decryption: WalDecryption | undefined;
  const failed = new Set<string>();
  let lastWanted: string | undefined;
  let activeAt = Date.now();
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
      // The wanted segment and the next ones, DECODERS at a time, up to the first the archive lacks.
      const batch: { name: string; record: WalRecord }[] = [];
      for (let i = 0n; i < BigInt(job.prefetch) && batch.length < DECODERS; i++) {
        const name = segmentName(at.timeline, at.segment + i);
        if (existsSync(join(job.spoolDirectory, name))) continue;
        if (failed.has(name)) break;
        const record = await archive.record(name).catch(() => undefined);
        if (!record) break; // not archived (yet): nothing past a gap is guessed
        batch.push({ name, record });
      }
      if (batch.some((b) => b.record.encrypted)) decryption ??= await openWalDecryption(config, env);
      const done = await Promise.all(batch.map((b) => fetchOne(job, archive, b.name, b.record, decryption)));
      done.forEach((ok, i) => ok || failed.add(batch[i]!.name));
      const fetched = done.some(Boolean);
      if (fetched) activeAt = Date.now();
      else await sleep(POLL_MS);
    }
  } finally {
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
    const raw = await decodeWal(archive, name, decryption);
    if (!raw) return false;
    spool(job, name, raw, record.rawSha256);
    return true;
  } catch (err) {
    const message = (err as Error).message;
    console.error(`pgwarden wal-get fetcher: ${name}: ${message} (wal-get fetches it itself)`);
    writeFileSync(failedFile(job.spoolDirectory, name), message, { mode: 0o600 });
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

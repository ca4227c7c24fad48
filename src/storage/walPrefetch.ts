// The fetcher of the asynchronous wal-get (walGet.async): a background process, one per spool,
// started by a restore_command (src/archive/getSpool.ts). It opens the decryption key once and
// decodes the segments after the one recovery asked for last (`wanted`), up to `prefetch` of them,
// into the spool, each with the sha256 its archive record gives the decoded bytes. It stops at a
// segment the archive lacks, never counts past the wanted segment's timeline, leaves a segment it
// cannot decode to the synchronous wal-get (which reports why), and goes when recovery has not
// asked for anything for a while, clearing the spool behind it.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import { parseSegmentName, segmentName } from '../lib/wal.js';
import {
  FETCHER_LOCK,
  clearSpool,
  fetcherStarted,
  spool,
  wantedSegment,
  type FetcherJob,
} from '../archive/getSpool.js';
import { claimLock, jobKey, lockHolder } from '../archive/pusherProcess.js';
import { openSpool } from '../archive/spool.js';
import { WalArchive, decodeWal, openWalDecryption, type WalDecryption } from './walArchive.js';

/** A fetcher recovery has not asked anything of this long leaves. */
const IDLE_MS = 30_000;
const POLL_MS = 50;

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
      let fetched = false;
      for (let i = 1n; i <= BigInt(job.prefetch) && !stopping; i++) {
        const name = segmentName(at.timeline, at.segment + i);
        if (existsSync(join(job.spoolDirectory, name))) continue;
        if (failed.has(name) || wantedSegment(job.spoolDirectory) !== wanted) break;
        const record = await archive.record(name).catch(() => undefined);
        if (!record) break; // not archived (yet): nothing past a gap is guessed
        try {
          if (record.encrypted) decryption ??= await openWalDecryption(config, env);
          const raw = await decodeWal(archive, name, decryption);
          if (!raw) break;
          spool(job, name, raw, record.rawSha256);
          fetched = true;
        } catch (err) {
          console.error(`pgwarden wal-get fetcher: ${name}: ${(err as Error).message} (wal-get fetches it itself)`);
          failed.add(name);
          break;
        }
      }
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

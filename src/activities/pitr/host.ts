// On the database host, around the swap: stop the server, bring the archive up to date and gather
// the WAL it lacks (latest), then move the live data directory aside and the staged one in.
import { existsSync } from 'node:fs';
import { chmod, chown, copyFile, open, readdir, rename, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { ErrorType, nonRetryable, retryable } from '../../lib/errors.js';
import { walRecordName } from '../../lib/layout.js';
import { headerMatchesSegment, parseLsn, parseSegmentName, segmentName, segmentOf } from '../../lib/wal.js';
import { pushWalFile } from '../../archive/push.js';
import * as postgres from '../../postgres/connection.js';
import { openRepository } from '../../storage/clusterRepository.js';
import { openWalDecryption, walPushSettingsFor } from '../../storage/walArchive.js';
import { decodeWalBatch } from '../../storage/walDecodeBatch.js';
import { hashFile } from '../../stream/pipeline.js';
import { writeFileAtomic } from '../../host/atomicFile.js';
import { EMPTY_ORIGINAL, NO_ORIGINAL, WAL_BATCH, type PitrContext } from './context.js';
import { isRunning, pgCtl } from './server.js';
import type { ArchiveWait, RecoveryPlan } from './types.js';

/** How long one archiveCurrentWal call looks for the switched segment before the workflow's timer takes over. */
const ARCHIVE_LOOK_MS = 3_000;

export function createHostActivities({ config, env, clusterRef, cc, runClusterHook }: PitrContext) {
  /** The stop step: pre-stop hook, then a clean (fast) shutdown, confirmed. Stopped already is fine. */
  async function stopCluster(plan: RecoveryPlan): Promise<string> {
    await runClusterHook(plan, 'preRestore');
    if (!(await isRunning(cc(plan), plan.dataDirectory))) return 'not running';
    const r = await pgCtl(cc(plan), plan.dataDirectory, ['stop', '-m', 'fast', '-w', '-t', '600'], { reject: false });
    if (r.exitCode !== 0 || (await isRunning(cc(plan), plan.dataDirectory))) {
      throw retryable(
        ErrorType.ClusterControlFailed,
        `pg_ctl stop of ${plan.dataDirectory} failed: ${r.stderr || r.stdout}`,
      );
    }
    return 'stopped';
  }

  /**
   * `latest`, before the stop: the live server finishes its current WAL segment (pg_switch_wal) and
   * the archive is waited for until it has it, bounded by `archiveWaitSeconds`. The first call
   * switches; the workflow asks again with the returned wait until `done`. An archive still behind
   * at the bound is no reason to stop: the segments it lacks come from the stopped server's pg_wal.
   */
  async function archiveCurrentWal(input: {
    plan: RecoveryPlan;
    waiting?: ArchiveWait;
  }): Promise<ArchiveWait & { done: boolean }> {
    const cluster = clusterRef(input.plan.cluster);
    let waiting = input.waiting;
    if (!waiting) {
      try {
        const segment = await postgres.withConnection(
          cluster,
          cluster.config.maintenanceDatabase,
          env,
          async (client) => {
            const { rows } = await client.query<{ seg: string | null }>(
              'SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_switch_wal()) END AS seg',
            );
            return rows[0]!.seg ?? undefined;
          },
        );
        if (!segment)
          return {
            since: new Date().toISOString(),
            done: true,
            detail: 'the cluster is a standby: no WAL switch; its pg_wal supplies what the archive lacks',
          };
        waiting = {
          since: new Date().toISOString(),
          segment,
          detail: `switched WAL; waiting for ${segment} to be archived`,
        };
      } catch (err) {
        return {
          since: new Date().toISOString(),
          done: true,
          detail: `the server could not switch WAL (${(err as Error).message}); its pg_wal supplies what the archive lacks`,
        };
      }
    }
    const archive = openRepository(config, input.plan.cluster).wal;
    const bound = cluster.config.archiveWaitSeconds;
    // The cluster is still up but about to stop: a healthy archiver takes a fraction of a second, so
    // look often for a few seconds here rather than leave it to the workflow's 2-second timer, which
    // the downtime would otherwise include.
    const lookUntil = Math.min(Date.now() + ARCHIVE_LOOK_MS, Date.parse(waiting.since) + bound * 1000);
    for (;;) {
      if (await archive.record(waiting.segment!))
        return { ...waiting, done: true, detail: `the archive has every segment up to ${waiting.segment}` };
      if (Date.now() >= lookUntil) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const waited = (Date.now() - Date.parse(waiting.since)) / 1000;
    if (waited >= bound)
      return {
        ...waiting,
        done: true,
        detail: `the archive still lacks ${waiting.segment} after ${Math.round(waited)} s; the stopped server's pg_wal supplies what it lacks`,
      };
    return {
      ...waiting,
      done: false,
      detail: `waiting for ${waiting.segment} to be archived (${Math.round(waited)} of ${bound} s)`,
    };
  }

  /**
   * `latest`, after the stop and before the swap: the WAL the archive got since the plan is staged,
   * and the stopped server's own segments the archive lacks (complete ones, and the last, partial
   * one) are copied into the staged WAL after it, so replay ends at the last committed transaction.
   * A segment in pg_wal counts when its first page says it is that segment (recycled and
   * preallocated files do not). One that the archive has with other content fails the run here,
   * before the swap, naming both.
   */
  async function gatherUnarchivedWal(
    plan: RecoveryPlan,
  ): Promise<{ fromArchive: string[]; fromPgWal: string[]; archived: string[]; notArchived?: string }> {
    const pgWal = join(plan.dataDirectory, 'pg_wal');
    const walDir = join(plan.workDirectory, 'wal');
    const local = new Map<bigint, string>();
    const timelines = new Set<number>();
    for (const name of existsSync(pgWal) ? await readdir(pgWal) : []) {
      const seg = parseSegmentName(name);
      if (!seg) continue;
      const header = Buffer.alloc(16);
      const file = await open(join(pgWal, name), 'r');
      try {
        await file.read(header, 0, 16, 0);
      } finally {
        await file.close();
      }
      if (!headerMatchesSegment(header, name)) continue;
      timelines.add(seg.timeline);
      if (seg.timeline === plan.targetTimeline) local.set(seg.segment, name);
    }
    const newer = [...timelines].filter((t) => t > plan.targetTimeline);
    if (newer.length) {
      throw nonRetryable(
        ErrorType.WalGap,
        `the stopped server wrote timeline ${Math.max(...newer)}, which the archive did not know when the plan chose timeline ${plan.targetTimeline} (its history file is not archived); nothing was swapped`,
      );
    }
    const archive = openRepository(config, plan.cluster).wal;
    const records = await archive.list();
    // Every segment in both places is compared, whether or not the archive's copy is staged already.
    for (const [segno, name] of local) {
      const record = records.get(name);
      if (!record) continue;
      const { sha256 } = await hashFile(join(pgWal, name));
      if (sha256 !== record.rawSha256) {
        throw nonRetryable(
          ErrorType.WalConflict,
          `WAL segment ${name} differs between the archive (${join(archive.dir, record.stored)}, sha256 ${record.rawSha256}) and ${join(pgWal, name)} (sha256 ${sha256}); neither is used silently: nothing was swapped`,
        );
      }
      Context.current().heartbeat({ phase: 'compare-wal', file: name, segment: String(segno) });
    }
    const staged = plan.walFiles.map((f) => parseSegmentName(f)).filter((p) => p !== undefined);
    const from = staged.length ? staged.at(-1)!.segment + 1n : segmentOf(parseLsn(plan.backupStopLsn));
    const to = [...local.keys()].reduce((a, b) => (b > a ? b : a), from - 1n);
    const fromArchive: string[] = [];
    const fromPgWal: string[] = [];
    // Up to the server's last segment, and on as far as the archive goes (a server with no pg_wal left).
    for (let segno = from; segno <= to || records.has(segmentName(plan.targetTimeline, segno)); segno++) {
      const name = segmentName(plan.targetTimeline, segno);
      if (existsSync(join(walDir, name))) continue;
      if (records.has(name)) fromArchive.push(name);
      else if (local.has(segno)) fromPgWal.push(name);
      else
        throw nonRetryable(
          ErrorType.WalGap,
          `WAL segment ${name} is neither in the archive nor in ${pgWal}: replay to "latest" would stop short of the stopped server's last transaction; nothing was swapped`,
        );
    }
    const decryption = fromArchive.length ? await openWalDecryption(config, env) : undefined;
    try {
      for (let i = 0; i < fromArchive.length; i += WAL_BATCH) {
        const { missing } = await decodeWalBatch(archive, fromArchive.slice(i, i + WAL_BATCH), decryption, walDir);
        if (missing.length)
          throw nonRetryable(ErrorType.WalGap, `WAL file ${missing[0]} left the archive while it was being staged`);
        Context.current().heartbeat({ phase: 'stage-wal', file: fromArchive[i] });
      }
    } finally {
      await decryption?.keyring.remove();
    }
    for (const name of fromPgWal) {
      await copyFile(join(pgWal, name), join(walDir, `.${name}.tmp`));
      await chmod(join(walDir, `.${name}.tmp`), 0o644);
      await rename(join(walDir, `.${name}.tmp`), join(walDir, name));
    }
    // The complete ones go into the archive too, as the server's archiver would have put them
    // (the partial last one never: it is archived as `.partial` after promotion): the archive
    // stays continuous, and the base backups before the recovery keep reaching the new timeline.
    // Best effort: an archive that refuses (full, say) does not stop a recovery that has its WAL.
    const partial = segmentName(plan.targetTimeline, to);
    const archived: string[] = [];
    let notArchived: string | undefined;
    const owner = await stat(archive.dir);
    for (const name of fromPgWal.filter((n) => n !== partial)) {
      try {
        const pushed = await pushWalFile(walPushSettingsFor(config, plan.cluster), join(pgWal, name), name);
        const record = await archive.record(name);
        // The archive belongs to the server's user (wal-push runs as it): so do these files.
        if (process.getuid?.() === 0 && record)
          for (const f of [record.stored, walRecordName(name)]) await chown(join(archive.dir, f), owner.uid, owner.gid);
        if (pushed.outcome === 'stored') archived.push(name);
      } catch (err) {
        notArchived = `${name} and after were not archived: ${(err as Error).message}`;
        break;
      }
    }
    return { fromArchive, fromPgWal, archived, ...(notArchived ? { notArchived } : {}) };
  }

  /**
   * The swap step: the live data directory moves aside (kept), the staged one takes its place.
   * An empty one (a rebuilt host's) has nothing to keep: it is removed, and the result says so.
   */
  async function swapDataDirectory(
    plan: Pick<RecoveryPlan, 'cluster' | 'dataDirectory' | 'workDirectory' | 'asideDirectory'>,
  ): Promise<{ movedAside: boolean }> {
    const staged = join(plan.workDirectory, 'data');
    const noOriginal = join(plan.workDirectory, NO_ORIGINAL);
    const emptyOriginal = join(plan.workDirectory, EMPTY_ORIGINAL);
    if (!existsSync(plan.asideDirectory) && !existsSync(noOriginal) && !existsSync(emptyOriginal)) {
      if (await isRunning(cc(plan), plan.dataDirectory))
        throw nonRetryable(
          ErrorType.ClusterControlFailed,
          `refusing to move ${plan.dataDirectory}: the server is running`,
        );
      // A rebuilt host has no data directory: nothing to keep, and a rollback leaves it missing again.
      // Or an empty one (the approval said "nothing to stop or keep"): it is removed below, not kept,
      // and a rollback lays it down empty again, with the mode and owner recorded here first.
      if (!existsSync(plan.dataDirectory))
        await writeFileAtomic(
          noOriginal,
          `${plan.dataDirectory} did not exist when the recovered one took its place\n`,
        );
      else if ((await readdir(plan.dataDirectory)).length === 0) {
        const found = await stat(plan.dataDirectory);
        await writeFileAtomic(
          emptyOriginal,
          `${JSON.stringify({ mode: found.mode & 0o7777, uid: found.uid, gid: found.gid })}\n`,
        );
      } else await rename(plan.dataDirectory, plan.asideDirectory);
    }
    if (existsSync(staged)) {
      // rmdir refuses a directory that is not empty: nothing put there since is ever removed.
      if (existsSync(emptyOriginal) && existsSync(plan.dataDirectory)) await rmdir(plan.dataDirectory);
      await rename(staged, plan.dataDirectory);
    }
    if (!existsSync(plan.dataDirectory))
      throw nonRetryable(
        ErrorType.RecoveryFailed,
        `neither the staged data directory nor ${plan.dataDirectory} exists`,
      );
    return { movedAside: !existsSync(noOriginal) && !existsSync(emptyOriginal) };
  }

  return { stopCluster, archiveCurrentWal, gatherUnarchivedWal, swapDataDirectory };
}

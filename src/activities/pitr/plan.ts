// The plan step: the target resolved, the base backup chosen, every WAL file to the target proven
// present and, from the WAL's content, that replay reaches the target. Nothing is touched.
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import { ApplicationFailure } from '@temporalio/activity';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import { clusterHostQueue } from '../../lib/hostQueue.js';
import { describeTarget, type RecoveryTarget } from '../../lib/recovery.js';
import { planRecoveryPath } from '../../lib/recoveryPath.js';
import { HISTORY_NAME, parseLsn, parseSegmentName } from '../../lib/wal.js';
import * as postgres from '../../postgres/connection.js';
import { openRepository } from '../../storage/clusterRepository.js';
import { readHistories } from '../../storage/walArchive.js';
import type { PitrContext } from './context.js';
import type { ArchiveWait, RecoveryMode, RecoveryPlan } from './types.js';
import { walSearch } from './walSearch.js';

export function createPlanActivities(ctx: PitrContext) {
  const { config, env, clusterRef } = ctx;
  const { scanWal, findRestorePoint } = walSearch(ctx);

  function dataDirectoryOf(cluster: string): string {
    const dir = clusterRef(cluster).config.dataDirectory;
    if (!dir)
      throw nonRetryable(
        ErrorType.InvalidInput,
        `cluster "${cluster}" has no dataDirectory in the config; point-in-time recovery needs it`,
      );
    return dir.replace(/\/+$/, '');
  }

  /** The plan step: target resolved, base backup chosen, every WAL file to the target proven present. */
  async function planRecovery(input: {
    cluster: string;
    target: RecoveryTarget;
    mode: RecoveryMode;
    runId: string;
    now?: string;
    /** Prove from the WAL's content that replay reaches the target (workflows from before this option do not ask). */
    prove?: boolean;
    /** The wait a previous call started (its result's `pending`). */
    waiting?: ArchiveWait;
  }): Promise<RecoveryPlan> {
    if (input.mode !== 'in-place' && input.mode !== 'rehearsal')
      throw nonRetryable(ErrorType.InvalidInput, `mode must be "in-place" or "rehearsal", not "${String(input.mode)}"`);
    const cluster = clusterRef(input.cluster);
    const dataDirectory = dataDirectoryOf(input.cluster);
    const repo = openRepository(config, input.cluster);
    const archive = repo.wal;
    const backups = await repo.baseBackups();
    const records = await archive.list();
    const histories = await readHistories(config, env, archive, records.keys());
    const path = planRecoveryPath({
      target: input.target,
      backups,
      wal: [...records.values()].map((r) => ({ name: r.name, archivedAt: r.archivedAt })),
      histories,
      now: input.now ? new Date(input.now) : new Date(),
      openEnded: input.prove,
      liveTimeline: await liveTimeline(input.cluster),
    });
    // Every history file the archive holds is staged, not only those on the path: at promotion the
    // server takes the first timeline id no history file names, and one the archive already has
    // (an abandoned branch) would collide with it there, and stop archiving.
    const otherHistories = [...records.keys()].filter((n) => HISTORY_NAME.test(n) && !path.walFiles.includes(n)).sort();
    let pending: ArchiveWait | undefined;
    if (input.prove) {
      pending = await proveReach(input, path, records);
    } else if ('name' in input.target && !(await findRestorePoint(input.cluster, input.target.name, path.walFiles))) {
      throw nonRetryable(
        ErrorType.BadTarget,
        `restore point "${input.target.name}" is not in the archived WAL after base backup ${path.backup.backupId}`,
      );
    }
    const id = input.runId.replace(/-/g, '').slice(-12); // the random end (run ids may start with a timestamp)
    const workDirectory =
      input.mode === 'in-place'
        ? `${dataDirectory}.pgwarden-pitr-${id}`
        : `${dirname(dataDirectory)}/pgwarden-rehearsal-${id}`;
    return {
      cluster: input.cluster,
      mode: input.mode,
      target: input.target,
      targetDescription: describeTarget(input.target),
      backupId: path.backup.backupId,
      backupStopLsn: path.backup.stopLsn,
      targetTimeline: path.targetTimeline,
      walFiles: [...otherHistories, ...path.walFiles, ...path.followingWalFiles],
      dataDirectory,
      workDirectory,
      asideDirectory: `${dataDirectory}.pre-pitr-${id}`,
      hostQueue: clusterHostQueue(cluster.config, config.worker.host ?? hostname()),
      ...(pending ? { pending } : {}),
    };
  }

  /**
   * Whether replay reaches the target, from the WAL's content: for a time, a commit or abort after
   * it; for an LSN, a record at or past it; for a restore point, its record. When the archive does
   * not reach it yet, the first call makes the live server finish its current segment (a tiny
   * transaction first for a time target, so that a commit after the target exists even on an idle
   * cluster) and returns a wait; later calls wait for that segment to be archived, bounded by
   * `archiveWaitSeconds`, then refuse the target with how far the archive reaches.
   */
  async function proveReach(
    input: { cluster: string; target: RecoveryTarget; waiting?: ArchiveWait },
    path: ReturnType<typeof planRecoveryPath>,
    records: Map<string, { name: string }>,
  ): Promise<ArchiveWait | undefined> {
    const { target } = input;
    if ('latest' in target) return undefined;
    let reach: string;
    if ('name' in target) {
      if (await findRestorePoint(input.cluster, target.name, path.walFiles)) return undefined;
      reach = `the archived WAL after base backup ${path.backup.backupId} (to ${path.lastSegment}) holds no restore point "${target.name}"`;
    } else {
      const found = await scanWal(input.cluster, target, [path.lastSegment, ...path.followingWalFiles]);
      if (found.reached) return undefined;
      reach = found.reach;
    }
    const bound = clusterRef(input.cluster).config.archiveWaitSeconds;
    const refuse = (why: string) =>
      nonRetryable(
        ErrorType.BadTarget,
        `${describeTarget(target)} is not reached by the archived WAL: ${reach}; ${why}. Nothing was touched.`,
      );
    if (!input.waiting) {
      const nudge = await finishCurrentSegment(input.cluster, target);
      return { since: new Date().toISOString(), segment: nudge.segment, detail: `${reach}; ${nudge.note}` };
    }
    const { segment } = input.waiting;
    if (segment && records.has(segment))
      throw refuse(
        `everything the server had written when plan switched WAL (to ${segment}) is archived, and replay would still end before the target`,
      );
    const waited = (Date.now() - Date.parse(input.waiting.since)) / 1000;
    if (waited >= bound)
      throw refuse(
        `waited ${Math.round(waited)} s (clusters.${input.cluster}.archiveWaitSeconds) for archiving${segment ? ` of ${segment}` : ''}`,
      );
    return {
      ...input.waiting,
      detail: `${reach}; waiting for archiving${segment ? ` of ${segment}` : ''} (${Math.round(waited)} of ${bound} s)`,
    };
  }

  /**
   * Makes the live server finish its current WAL segment so that archiving takes it: pg_switch_wal,
   * after (time targets) a transaction that only takes a transaction id, whose commit record marks
   * "now". A standby cannot do either (it is read-only; the primary's archiving is waited for), nor a
   * server that is down; an LSN past the server's own position is refused at once.
   */
  async function finishCurrentSegment(
    clusterName: string,
    target: RecoveryTarget,
  ): Promise<{ segment?: string; note: string }> {
    const cluster = clusterRef(clusterName);
    try {
      return await postgres.withConnection(cluster, cluster.config.maintenanceDatabase, env, async (client) => {
        const { rows } = await client.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
        if (rows[0]!.rec)
          return { note: 'the cluster is a standby (read-only): waiting for the primary to archive more WAL' };
        if ('lsn' in target) {
          const { rows: at } = await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
          if (parseLsn(at[0]!.lsn) < parseLsn(target.lsn))
            throw nonRetryable(
              ErrorType.BadTarget,
              `LSN ${target.lsn} is past the server's current WAL position ${at[0]!.lsn}. Nothing was touched.`,
            );
        }
        if ('time' in target) await client.query('SELECT txid_current()');
        const { rows: sw } = await client.query<{ seg: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS seg');
        return {
          segment: sw[0]!.seg,
          note: `pgwarden switched the server to a new WAL segment and waits for ${sw[0]!.seg} to be archived`,
        };
      });
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      return { note: `the server could not switch WAL (${(err as Error).message}): waiting for archiving` };
    }
  }

  /**
   * The timeline the live primary writes, or undefined when it is down, missing or a standby: what
   * "this cluster's history" means for the target (planRecoveryPath).
   */
  async function liveTimeline(clusterName: string): Promise<number | undefined> {
    const cluster = clusterRef(clusterName);
    try {
      return await postgres.withConnection(cluster, cluster.config.maintenanceDatabase, env, async (client) => {
        const { rows } = await client.query<{ seg: string | null }>(
          'SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS seg',
        );
        return rows[0]!.seg ? parseSegmentName(rows[0]!.seg)?.timeline : undefined;
      });
    } catch (err) {
      // A server that is down (or starting) has no timeline to follow; one that refuses pgwarden's
      // credentials would hide which history is the cluster's own, so that is said, not guessed past.
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('28')) {
        throw nonRetryable(
          ErrorType.ClusterControlFailed,
          `plan cannot read ${clusterName}'s current timeline: ${(err as Error).message}. Nothing was touched.`,
        );
      }
      return undefined;
    }
  }

  return { planRecovery };
}

// promoteStandby's activities, over SQL (no data directory is touched, so they run on the shared
// queue): a look at the standby, its primary and the cluster's WAL archive, watched until the
// standby has replayed through the archive's end (bounded); then pg_promote() and the wait until it
// accepts writes, after a second look that refuses if anything changed the approver was not told of
// (the approval may be 24 h old). Safe to repeat: a server already promoted past the planned
// timeline is success.
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import {
  archiveEndOf,
  judgePromotion,
  staleApproval,
  type PromotionJudgement,
  type PromotionLook,
} from '../../lib/promotion.js';
import { withConnection } from '../../postgres/connection.js';
import { readStandbySelf, standbyRef } from '../../postgres/replication.js';
import { openRepository } from '../../storage/clusterRepository.js';
import type { PitrContext } from '../pitr/context.js';
import { standbyOf } from './build.js';

/** How long one watch lasts before it reports back (the workflow shows the detail and asks again). */
const WATCH_MS = 20_000;
/** How long a paused replay that does not move is watched. */
const PAUSED_MS = 3_000;

export interface PromotionInput {
  cluster: string;
  standby: string;
}

export interface PromotionWatch {
  look: PromotionLook;
  judged: PromotionJudgement;
  /** Replay did not move during this watch. */
  stalled: boolean;
}

/** What the approver read, for promote's second look (activity arguments: not part of the command sequence). */
export interface PromoteInput extends PromotionInput {
  fromTimeline: number;
  /** plan's warnings, as in the approval (absent in runs started before the second look: none). */
  planWarnings?: string[];
  allowBehindArchive?: boolean;
}

export interface Promoted {
  /** The timeline it writes on now. */
  timeline: number;
  /** Where the new timeline began (its last replayed position). */
  switchLsn: string | null;
  /** It was promoted already (a retry, or an earlier run). */
  already: boolean;
  /** Its current WAL position, once it accepted a write transaction. */
  currentLsn: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const timelineOfWal = (file: string) => parseInt(file.slice(0, 8), 16);

/** The standby's timeline: its WAL receiver's when one runs, else its last restartpoint's (the higher). */
async function standbyTimeline(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ checkpoint: number; received: number | null }>(
    `SELECT (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint,
            (SELECT received_tli FROM pg_stat_wal_receiver LIMIT 1) AS received`,
  );
  return Math.max(rows[0]!.checkpoint, rows[0]!.received ?? 0);
}

export function createPromotionActivities(ctx: PitrContext) {
  const { config, env, clusterRef } = ctx;
  const standbyConnection = (input: PromotionInput) =>
    standbyRef(clusterRef(input.cluster), standbyOf(ctx, input.cluster, input.standby));

  async function look(input: PromotionInput): Promise<PromotionLook> {
    const primary = clusterRef(input.cluster);
    const configured = standbyOf(ctx, input.cluster, input.standby);
    const ref = standbyRef(primary, configured);
    const address = `${configured.host}:${configured.port}`;
    const seen = await withConnection(ref, ref.config.maintenanceDatabase, env, async (client) => {
      const self = await readStandbySelf(client);
      if (!self.inRecovery) return { self, timeline: 0, hasRestoreCommand: undefined };
      // Only whether it has one: the command may embed credentials, and looks land in the history.
      const hasRestoreCommand = await client
        .query<{ set: boolean }>(`SELECT current_setting('restore_command') <> '' AS set`)
        .then(
          (r) => r.rows[0]!.set,
          () => undefined,
        );
      return { self, timeline: await standbyTimeline(client), hasRestoreCommand };
    });
    if (!seen.self.inRecovery)
      throw nonRetryable(
        ErrorType.InvalidInput,
        `standby ${input.standby} (${address}) is not in recovery: it is a primary already (promoted before?) or not a standby at all; nothing to promote`,
      );
    const p = primary.config;
    const primaryAddress = `${p.host}:${p.port}`;
    const primarySeen = await withConnection(primary, p.maintenanceDatabase, env, async (client) => {
      const { rows } = await client.query<{ r: boolean; lsn: string | null }>(
        `SELECT pg_is_in_recovery() AS r, CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn()::text END AS lsn`,
      );
      return { address: primaryAddress, reachable: true as const, inRecovery: rows[0]!.r, currentLsn: rows[0]!.lsn };
    }).catch((err: Error) => ({ address: primaryAddress, reachable: false as const, error: err.message }));
    // Another configured standby out of recovery was promoted already: a second primary in the cluster.
    const others = (primary.config.standbys ?? []).filter((s) => s.name !== input.standby);
    const otherPrimaries = (
      await Promise.all(
        others.map((s) => {
          const r = standbyRef(primary, s);
          return withConnection(r, r.config.maintenanceDatabase, env, async (client) =>
            (await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r
              ? undefined
              : `${s.name} (${s.host}:${s.port})`,
          ).catch(() => undefined); // one not answering cannot be told of
        }),
      )
    ).filter((o): o is string => o !== undefined);
    // The committed WAL files (those with a record, <name>.json), by name only: no record is read.
    const { wal } = openRepository(config, input.cluster);
    const names = (await wal.repository.storage.names(wal.repository.keyOf(wal.dir)))
      .filter((n) => n.endsWith('.json'))
      .map((n) => n.slice(0, -'.json'.length));
    return {
      standby: input.standby,
      address,
      inRecovery: true,
      timeline: seen.timeline,
      receiveLsn: seen.self.receiveLsn,
      replayLsn: seen.self.replayLsn,
      replayPaused: seen.self.replayPaused,
      ...(seen.hasRestoreCommand !== undefined ? { hasRestoreCommand: seen.hasRestoreCommand } : {}),
      ...(otherPrimaries.length ? { otherPrimaries } : {}),
      primary: primarySeen,
      archive: archiveEndOf(names, seen.timeline),
    };
  }

  /**
   * Looks for up to 20 s, heartbeating what it sees; returns as soon as the standby has replayed
   * through the archive's end, or with what it saw last and whether replay moved at all.
   */
  async function watchPromotionCandidate(input: PromotionInput): Promise<PromotionWatch> {
    const activity = Context.current();
    const until = Date.now() + WATCH_MS;
    const first = await look(input);
    let last = first;
    let movedAt = Date.now();
    for (;;) {
      const judged = judgePromotion(last);
      activity.heartbeat({ phase: 'plan', detail: judged.detail });
      const stalled = last.replayLsn === first.replayLsn;
      // Paused and not moving: nothing but an operator moves it, so say so now rather than in 20 s.
      const pausedStill = last.replayPaused && Date.now() - movedAt >= PAUSED_MS;
      if (judged.caughtUp || Date.now() >= until || pausedStill) return { look: last, judged, stalled };
      await sleep(1_000);
      activity.cancellationSignal.throwIfAborted();
      const before = last.replayLsn;
      last = await look(input);
      if (last.replayLsn !== before) movedAt = Date.now();
    }
  }

  /**
   * A second look first (the approval may be hours old): refused, nothing done, when anything the
   * approver was not warned of is true now. Then pg_promote() on the standby (replay resumed first
   * when paused), and until it is out of recovery and accepts a write transaction, heartbeating its
   * replay position (it replays all it received first: hours for a standby paused for long). A server
   * already out of recovery on a later timeline than the plan's was promoted (a retry): success.
   */
  async function promoteToPrimary(input: PromoteInput): Promise<Promoted> {
    const activity = Context.current();
    const ref = standbyConnection(input);
    const db = ref.config.maintenanceDatabase;
    const state = async (client: pg.Client) =>
      (
        await client.query<{ r: boolean; wal: string | null; replay: string | null; receive: string | null }>(
          `SELECT pg_is_in_recovery() AS r, CASE WHEN NOT pg_is_in_recovery() THEN pg_walfile_name(pg_current_wal_lsn()) END AS wal,
                  pg_last_wal_replay_lsn()::text AS replay, pg_last_wal_receive_lsn()::text AS receive`,
        )
      ).rows[0]!;
    const promotedAlready = (before: { wal: string | null }) => {
      const timeline = timelineOfWal(before.wal!);
      if (timeline <= input.fromTimeline)
        throw nonRetryable(
          ErrorType.InvalidInput,
          `standby ${input.standby} is not in recovery but still on timeline ${timeline}: it is not the standby the plan saw; nothing done`,
        );
      return true;
    };
    const first = await withConnection(ref, db, env, state);
    if (first.r) {
      const seen = await watchPromotionCandidate(input);
      const why = staleApproval(seen.judged, {
        warnings: input.planWarnings ?? [],
        allowBehindArchive: !!input.allowBehindArchive,
      });
      if (why)
        throw nonRetryable(
          ErrorType.ApprovalStale,
          `not promoted: since the approval, ${why}. Nothing done (standby ${input.standby} is still in recovery); start again for a new plan and approval`,
        );
    }
    const already = await withConnection(ref, db, env, async (client) => {
      const before = await state(client);
      if (!before.r) return promotedAlready(before);
      // PostgreSQL 13+ ends a pause at promotion (12 waited for a resume): resumed first all the same.
      if ((await client.query<{ p: boolean }>('SELECT pg_is_wal_replay_paused() AS p')).rows[0]!.p)
        await client.query('SELECT pg_wal_replay_resume()');
      // Not waiting here: the loop below waits, heartbeating, and a retry finds the promotion done.
      await client.query('SELECT pg_promote(false)');
      return false;
    });
    for (;;) {
      const done = await withConnection(ref, db, env, async (client) => {
        const now = await state(client);
        activity.heartbeat({ phase: 'promote', inRecovery: now.r, replayLsn: now.replay, receiveLsn: now.receive });
        if (now.r) return undefined;
        // A write transaction: an xid is assigned only on a server that accepts writes.
        await client.query('BEGIN');
        await client.query('SELECT pg_current_xact_id()');
        await client.query('ROLLBACK');
        const { rows } = await client.query<{ switch: string | null; lsn: string; wal: string }>(
          `SELECT pg_last_wal_replay_lsn()::text AS switch, pg_current_wal_lsn()::text AS lsn,
                  pg_walfile_name(pg_current_wal_lsn()) AS wal`,
        );
        return { timeline: timelineOfWal(rows[0]!.wal), switchLsn: rows[0]!.switch, currentLsn: rows[0]!.lsn, already };
      }).catch((err: Error) => {
        // While it ends recovery a connection may be refused for a moment.
        activity.heartbeat({ phase: 'promote', error: err.message });
        return undefined;
      });
      if (done) return done;
      await sleep(500);
      activity.cancellationSignal.throwIfAborted();
    }
  }

  return { watchPromotionCandidate, promoteToPrimary };
}

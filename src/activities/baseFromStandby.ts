// Base backups from a standby (issue 17): pg_basebackup runs against the standby, whose WAL archive
// is fed by the primary. A standby neither switches WAL (pg_switch_wal() is refused in recovery)
// nor, unless its archive_mode is `always`, waits for archiving at the backup's end (PostgreSQL
// only says "WAL archiving is not enabled"); so the switch and the wait until the backup's last
// segment is archived run against the primary. Every segment from the backup's start to its last is
// waited for, each by its own record: with an asynchronous wal-push (several pushes at a time) a later
// segment can be archived while an earlier one failed. A later PITR's plan proves the path from the
// archive as for any base backup.
import type { Config } from '../config/index.js';
import { ErrorType, nonRetryable, retryable } from '../lib/errors.js';
import { parseLsn, segmentName, segmentOf } from '../lib/wal.js';
import { clusterRef, withConnection, type ClusterRef } from '../postgres/connection.js';
import type pg from 'pg';
import { openRepository } from '../storage/clusterRepository.js';

/**
 * The segment holding the backup's last byte. A standby's backup ends at its minimum recovery point,
 * which sits exactly on a segment boundary when the last record it replayed was a WAL switch: the
 * backup then needs nothing of the segment that starts there (PostgreSQL's XLByteToPrevSeg).
 */
export function lastSegmentOf(timeline: number, stopLsn: string): string {
  return segmentName(timeline, segmentOf(parseLsn(stopLsn) - 1n));
}

/** The standby is still one of this cluster's standbys: in recovery, with the primary's system identifier. */
export async function checkStandbySource(
  ref: ClusterRef,
  env: NodeJS.ProcessEnv,
  systemIdentifier: string,
): Promise<void> {
  const row = await withConnection(ref, ref.config.maintenanceDatabase, env, async (c) => {
    const { rows } = await c.query<{ recovery: boolean; id: string }>(
      'SELECT pg_is_in_recovery() AS recovery, system_identifier::text AS id FROM pg_control_system()',
    );
    return rows[0]!;
  });
  if (row.id !== systemIdentifier)
    throw nonRetryable(
      ErrorType.StandbyUnavailable,
      `${ref.name} has system identifier ${row.id}, the primary ${systemIdentifier}: it is not a standby of this cluster`,
    );
  if (!row.recovery)
    throw nonRetryable(
      ErrorType.StandbyUnavailable,
      `${ref.name} is not in recovery (promoted?): pgwarden takes base backups from a standby of the primary only`,
    );
}

/** The segments a backup needs, from the one holding its start to the one holding its last byte. */
export function backupSegments(timeline: number, startLsn: string, stopLsn: string): string[] {
  const first = segmentOf(parseLsn(startLsn));
  const last = segmentOf(parseLsn(stopLsn) - 1n);
  const out: string[] = [];
  for (let s = first; s <= last; s++) out.push(segmentName(timeline, s));
  return out;
}

/** pg_stat_archiver in one line: last archived and last failed segment with their times, failures. */
async function archiverState(client: pg.Client): Promise<string> {
  const { rows } = await client.query<Record<string, string | null>>(
    `SELECT last_archived_wal, last_archived_time::text, last_failed_wal, last_failed_time::text, failed_count::text
       FROM pg_stat_archiver`,
  );
  const s = rows[0]!;
  return `last archived ${s.last_archived_wal ?? 'none'} at ${s.last_archived_time ?? '-'}, last failed ${s.last_failed_wal ?? 'none'} at ${s.last_failed_time ?? '-'}, ${s.failed_count} failures`;
}

/**
 * Switches the primary's WAL when it still writes the backup's last segment, then waits (calling
 * `beat`, bounded by `timeoutMs`) until every segment from the backup's start to its last has its
 * record in the repository's WAL archive. Refuses (non-retryably) a backup whose timeline is not the
 * primary's. Safe to run again: once the primary has moved past the segment nothing is switched.
 */
export async function archiveStopSegment(o: {
  config: Config;
  env: NodeJS.ProcessEnv;
  cluster: string;
  timeline: number;
  startLsn: string;
  stopLsn: string;
  beat: (waitingFor: string) => void;
  signal: AbortSignal;
  timeoutMs?: number;
}): Promise<string> {
  const primary = clusterRef(o.config, o.cluster);
  const needed = backupSegments(o.timeline, o.startLsn, o.stopLsn);
  const last = needed.at(-1)!;
  const wal = openRepository(o.config, o.cluster).wal;
  const timeoutMs = o.timeoutMs ?? 10 * 60_000;
  return withConnection(primary, primary.config.maintenanceDatabase, o.env, async (client) => {
    const { rows } = await client.query<{ current: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS current');
    const current = rows[0]!.current;
    // A standby that followed another primary (or a primary promoted since): the backup's WAL is not
    // this primary's, and taking it again from the same standby would not change that.
    const timeline = parseInt(current.slice(0, 8), 16);
    if (timeline !== o.timeline)
      throw nonRetryable(
        ErrorType.StandbyUnavailable,
        `the base backup taken from the standby is on timeline ${o.timeline}, the primary of "${o.cluster}" on timeline ${timeline}: the standby does not follow this primary's timeline; nothing was committed`,
      );
    // Names compare in order on one timeline; the primary still in the segment must finish it.
    if (current.slice(8) <= last.slice(8)) await client.query('SELECT pg_switch_wal()');
    const until = Date.now() + timeoutMs;
    // A record, once there, stays: each poll reads only the records still missing.
    let missing = needed;
    for (;;) {
      const found = await Promise.all(missing.map(async (n) => !!(await wal.record(n))));
      missing = missing.filter((_, i) => !found[i]);
      if (!missing.length) return last;
      if (o.signal.aborted) throw o.signal.reason;
      if (Date.now() > until) {
        const list =
          missing.length > 3 ? `${missing.slice(0, 3).join(', ')} and ${missing.length - 3} more` : missing.join(', ');
        throw retryable(
          ErrorType.WalNotArchived,
          `the primary of "${o.cluster}" has not archived ${list} of the WAL segments ${needed[0]}..${last} the base backup taken from its standby needs, within ${Math.round(timeoutMs / 1000)} s; pg_stat_archiver: ${await archiverState(client)}`,
        );
      }
      o.beat(missing[0]!);
      await new Promise((r) => setTimeout(r, 1000));
    }
  });
}

/**
 * A standby with archive_mode = always makes pg_basebackup wait, at the backup's end, until the
 * standby itself archived the backup's last segment, which it can only do once the primary finished
 * that segment: on a quiet primary, never. While the backup runs, this looks every `intervalMs`
 * whether this backup's WAL sender on the standby (`application_name`) waits for archiving (wait
 * event BackupWaitWalArchive). The segment it waits for holds the byte before the standby's minimum
 * recovery point (where a standby's backup stops) when the wait is first seen; if the primary still
 * writes that segment, the primary's WAL is switched, once (a primary past it has finished it). A
 * standby still waiting after `waitTimeoutMs` cannot archive: its WAL sender is ended and `fail` gets
 * WalNotArchived quoting the standby's pg_stat_archiver. A standby that cannot be read for
 * `unreachableMs` fails the backup too (StandbyUnavailable, retryable). Returns
 * the function that stops looking.
 */
export function switchWhileStandbyWaits(o: {
  config: Config;
  env: NodeJS.ProcessEnv;
  cluster: string;
  standby: ClusterRef;
  applicationName: string;
  fail: (err: Error) => void;
  intervalMs?: number;
  waitTimeoutMs?: number;
  unreachableMs?: number;
}): () => void {
  const primary = clusterRef(o.config, o.cluster);
  const intervalMs = o.intervalMs ?? 2000;
  const waitTimeoutMs = o.waitTimeoutMs ?? 10 * 60_000;
  const unreachableMs = o.unreachableMs ?? 60_000;
  let switched = false;
  let stopped = false;
  let waitingSince: number | undefined;
  let waitingFor: string | undefined;
  let lastRead = Date.now();
  let wake: () => void = () => undefined;
  const sleep = (ms: number) =>
    new Promise<void>((r) => {
      wake = r;
      setTimeout(r, ms);
    });
  /** One look; true when it failed the backup. */
  const look = async (): Promise<boolean> =>
    withConnection(o.standby, o.standby.config.maintenanceDatabase, o.env, async (standby) => {
      // pg_walfile_name() is refused in recovery: the name is computed here.
      const { rows } = await standby.query<{ pid: number; lsn: string; tli: number }>(
        `SELECT a.pid, r.min_recovery_end_lsn::text AS lsn, r.min_recovery_end_timeline AS tli
           FROM pg_stat_activity a, pg_control_recovery() r
          WHERE a.application_name = left($1, 63) AND a.wait_event = 'BackupWaitWalArchive'`,
        [o.applicationName],
      );
      lastRead = Date.now();
      const found = rows[0];
      if (!found || stopped) {
        waitingSince = waitingFor = undefined;
        return false;
      }
      // Taken when the wait is first seen: the recovery point moves on with replay, the backup's stop does not.
      waitingFor ??= lastSegmentOf(found.tli, found.lsn);
      const row = { pid: found.pid, waiting: waitingFor };
      waitingSince ??= Date.now();
      if (Date.now() - waitingSince > waitTimeoutMs) {
        const state = await archiverState(standby).catch((e: Error) => `unreadable (${e.message})`);
        // Best effort (a user without the right leaves it to notice the stopped pg_basebackup): the
        // backup fails either way.
        await standby.query('SELECT pg_terminate_backend($1)', [row.pid]).catch(() => undefined);
        o.fail(
          retryable(
            ErrorType.WalNotArchived,
            `standby ${o.standby.name} (archive_mode = always) has not archived ${row.waiting}, the last WAL segment of the base backup taken from it, within ${Math.round(waitTimeoutMs / 1000)} s; its pg_stat_archiver: ${state}`,
          ),
        );
        return true;
      }
      if (switched) return false;
      await withConnection(primary, primary.config.maintenanceDatabase, o.env, async (c) => {
        const { rows: p } = await c.query<{ current: string }>(
          'SELECT pg_walfile_name(pg_current_wal_lsn()) AS current',
        );
        // Names compare in order on one timeline: past the segment, the primary has finished it.
        if (p[0]!.current.slice(8) <= row.waiting.slice(8)) await c.query('SELECT pg_switch_wal()');
      });
      switched = true;
      return false;
    });
  void (async () => {
    while (!stopped) {
      await sleep(intervalMs);
      if (stopped) return;
      try {
        if (await look()) return;
      } catch (err) {
        if (!stopped && Date.now() - lastRead > unreachableMs) {
          o.fail(
            retryable(
              ErrorType.StandbyUnavailable,
              `standby ${o.standby.name} could not be read for ${Math.round(unreachableMs / 1000)} s while pg_basebackup ran against it: ${(err as Error).message}`,
            ),
          );
          return;
        }
      }
    }
  })();
  return () => {
    stopped = true;
    wake();
  };
}

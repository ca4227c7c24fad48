// Base backups from a standby (issue 17): pg_basebackup runs against the standby, whose WAL archive
// is fed by the primary. A standby neither switches WAL (pg_switch_wal() is refused in recovery)
// nor, unless its archive_mode is `always`, waits for archiving at the backup's end (PostgreSQL
// only says "WAL archiving is not enabled"); so the switch and the wait until the backup's last
// segment is archived run against the primary. Archiving goes in order: once that segment is
// archived, every segment from the backup's start is too, and a later PITR's plan proves the path
// from the archive as for any base backup.
import type { Config } from '../config/index.js';
import { ErrorType, nonRetryable, retryable } from '../lib/errors.js';
import { parseLsn, segmentName, segmentOf } from '../lib/wal.js';
import { clusterRef, withConnection, type ClusterRef } from '../postgres/connection.js';
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

/**
 * Switches the primary's WAL when it still writes the backup's last segment, then waits (calling
 * `beat`, bounded by `timeoutMs`) until that segment is in the repository's WAL archive. Safe to run
 * again: once the primary has moved past the segment nothing is switched.
 */
export async function archiveStopSegment(o: {
  config: Config;
  env: NodeJS.ProcessEnv;
  cluster: string;
  timeline: number;
  stopLsn: string;
  beat: (waitingFor: string) => void;
  signal: AbortSignal;
  timeoutMs?: number;
}): Promise<string> {
  const primary = clusterRef(o.config, o.cluster);
  const last = lastSegmentOf(o.timeline, o.stopLsn);
  const wal = openRepository(o.config, o.cluster).wal;
  const timeoutMs = o.timeoutMs ?? 10 * 60_000;
  return withConnection(primary, primary.config.maintenanceDatabase, o.env, async (client) => {
    const { rows } = await client.query<{ current: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS current');
    // Names compare in order on one timeline; the primary still in the segment must finish it.
    if (rows[0]!.current.slice(8) <= last.slice(8)) await client.query('SELECT pg_switch_wal()');
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (await wal.record(last)) return last;
      if (o.signal.aborted) throw o.signal.reason;
      if (Date.now() > until) {
        const { rows: a } = await client.query<Record<string, string | null>>(
          `SELECT last_archived_wal, last_archived_time::text, last_failed_wal, last_failed_time::text, failed_count::text
             FROM pg_stat_archiver`,
        );
        const s = a[0]!;
        throw retryable(
          ErrorType.WalNotArchived,
          `the primary of "${o.cluster}" has not archived ${last}, the last WAL segment the base backup taken from its standby needs, within ${Math.round(timeoutMs / 1000)} s; pg_stat_archiver: last archived ${s.last_archived_wal ?? 'none'} at ${s.last_archived_time ?? '-'}, last failed ${s.last_failed_wal ?? 'none'} at ${s.last_failed_time ?? '-'}, ${s.failed_count} failures`,
        );
      }
      o.beat(last);
      await new Promise((r) => setTimeout(r, 500));
    }
  });
}

/**
 * A standby with archive_mode = always makes pg_basebackup wait, at the backup's end, until the
 * standby itself archived the backup's last segment, which it can only do once the primary finished
 * that segment: on a quiet primary, never. While the backup runs, this looks every 2 s whether the
 * standby's WAL sender waits for archiving (wait event BackupWaitWalArchive) and, if so, switches
 * the primary's WAL. Returns the function that stops looking; failures only end the looking.
 */
export function switchWhileStandbyWaits(o: {
  config: Config;
  env: NodeJS.ProcessEnv;
  cluster: string;
  standby: ClusterRef;
}): () => void {
  const primary = clusterRef(o.config, o.cluster);
  let stopped = false;
  let wake: () => void = () => undefined;
  const sleep = (ms: number) =>
    new Promise<void>((r) => {
      wake = r;
      setTimeout(r, ms);
    });
  void withConnection(o.standby, o.standby.config.maintenanceDatabase, o.env, async (standby) => {
    while (!stopped) {
      await sleep(2000);
      if (stopped) return;
      const { rows } = await standby.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'BackupWaitWalArchive'`,
      );
      if (rows[0]!.n > 0)
        await withConnection(primary, primary.config.maintenanceDatabase, o.env, (c) =>
          c.query('SELECT pg_switch_wal()'),
        );
    }
  }).catch(() => undefined);
  return () => {
    stopped = true;
    wake();
  };
}

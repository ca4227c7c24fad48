// walMaintenance's activities: is the archiver keeping up (pg_stat_archiver), which archived WAL
// no retained base backup needs (src/lib/walRetention.ts), and how big the archive is. Each one
// is safe to repeat: health and size only read; retention recomputes what to delete every time.
import type { Config } from '../config/index.js';
import { formatBytes } from '../lib/diskSpace.js';
import { parseLsn, parseSegmentName, segmentOf } from '../lib/wal.js';
import { parseWindow, planWalRetention, windowAnchor, type WalRetentionDecision } from '../lib/walRetention.js';
import { offsiteGate } from '../storage/offsiteConfirmed.js';
import * as postgres from '../postgres/connection.js';
import { openRepository } from '../storage/clusterRepository.js';
import { recentTimelines } from '../storage/walArchive.js';

export interface ArchiverHealth {
  archiveMode: string;
  lastArchivedWal: string | null;
  lastArchivedAt: string | null;
  /** Server clock; null when nothing was archived since the statistics were reset. */
  secondsSinceLastArchived: number | null;
  /** Completed segments newer than the last archived one; null when unknown (standby, history file). */
  segmentsWaiting: number | null;
  /** Failed attempts since the statistics were reset (PostgreSQL retries each file). */
  failedCount: number;
  lastFailedWal: string | null;
  lastFailedAt: string | null;
  alerts: string[];
}

export interface WalRetentionResult {
  dryRun: boolean;
  /** Deleted (or, with dryRun, deletable) WAL files, oldest first. */
  deleted: string[];
  kept: number;
  bytesFreed: number;
  keepFrom?: WalRetentionDecision['keepFrom'];
  /** Older kept base backups and the WAL kept for each (start → stop segment). */
  ranges?: WalRetentionDecision['ranges'];
  /** The PITR window (`walRetention.window`). */
  window?: string;
  /** WAL files retention would delete that an offsite repository has not confirmed yet: kept for now. */
  waitingOffsite?: number;
  /** The first of them, oldest first, and the repositories each waits for. */
  waitingOffsiteFiles?: { name: string; repositories: string[] }[];
}

export interface WalArchiveSize {
  files: number;
  /** Stored bytes (compressed, encrypted) of the committed WAL files. */
  bytes: number;
  alert?: string;
}

interface ArchiverRow {
  last_archived_wal: string | null;
  last_archived_time: Date | null;
  failed_count: string;
  last_failed_wal: string | null;
  last_failed_time: Date | null;
  seconds_since: string | null;
  current_lsn: string | null;
  in_recovery: boolean;
}

export function createWalMaintenanceActivities({ config, env }: { config: Config; env: NodeJS.ProcessEnv }) {
  async function archiverHealth(input: { cluster: string }): Promise<ArchiverHealth> {
    const cluster = postgres.clusterRef(config, input.cluster);
    const { row, settings } = await postgres.withConnection(
      cluster,
      cluster.config.maintenanceDatabase,
      env,
      async (client) => {
        const { rows: s } = await client.query<{ name: string; setting: string }>(
          `SELECT name, setting FROM pg_settings WHERE name IN ('archive_mode', 'archive_command', 'archive_library')`,
        );
        // A standby has no current write position (and its archiver only runs with archive_mode=always).
        const { rows } = await client.query<ArchiverRow>(`
        SELECT last_archived_wal, last_archived_time, failed_count::text, last_failed_wal, last_failed_time,
               EXTRACT(EPOCH FROM now() - last_archived_time)::text AS seconds_since,
               CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,
               pg_is_in_recovery() AS in_recovery
          FROM pg_stat_archiver`);
        return {
          row: rows[0]!,
          settings: Object.fromEntries(s.map((r) => [r.name, r.setting])) as Record<string, string | undefined>,
        };
      },
    );

    const health: ArchiverHealth = {
      archiveMode: settings.archive_mode ?? 'unknown',
      lastArchivedWal: row.last_archived_wal,
      lastArchivedAt: row.last_archived_time?.toISOString() ?? null,
      secondsSinceLastArchived: row.seconds_since === null ? null : Math.round(Number(row.seconds_since)),
      segmentsWaiting: segmentsWaiting(row.last_archived_wal, row.current_lsn),
      failedCount: Number(row.failed_count),
      lastFailedWal: row.last_failed_wal,
      lastFailedAt: row.last_failed_time?.toISOString() ?? null,
      alerts: [],
    };
    const where = `cluster "${input.cluster}"`;
    const threshold = config.walMaintenance.archiveLagAlertSeconds;
    // A standby archives only with archive_mode=always; otherwise its primary does.
    if (row.in_recovery && health.archiveMode !== 'always') return health;
    if (health.archiveMode === 'off') {
      health.alerts.push(
        `${where}: archive_mode is off, so no WAL is archived (see \`pgwarden cluster archiving --cluster ${input.cluster}\`)`,
      );
    } else if (!settings.archive_command && !settings.archive_library) {
      health.alerts.push(
        `${where}: archive_mode is ${health.archiveMode} but archive_command is empty, so no WAL is archived`,
      );
    }
    // failed_count only grows until a statistics reset: alert while the latest attempt is a failure.
    const failing =
      health.failedCount > 0 &&
      (!row.last_archived_time || (row.last_failed_time !== null && row.last_failed_time > row.last_archived_time));
    if (failing) {
      health.alerts.push(
        `${where}: archive_command is failing: ${health.failedCount} failed attempts, the last for ${health.lastFailedWal} at ${health.lastFailedAt}; WAL piles up in pg_wal until it succeeds`,
      );
    }
    // An idle cluster archives nothing and that is fine: lag matters only while segments wait.
    const lag = health.secondsSinceLastArchived;
    if (lag !== null && lag > threshold && health.segmentsWaiting !== 0) {
      health.alerts.push(
        `${where}: nothing archived for ${lag}s (alert threshold ${threshold}s) while ${health.segmentsWaiting ?? 'some'} segments wait; last archived ${health.lastArchivedWal}`,
      );
    }
    return health;
  }

  /**
   * Deletes the WAL no retained base backup needs inside or before the PITR window
   * (src/lib/walRetention.ts) and every offsite repository has confirmed; with dryRun only says
   * which. `withoutBackups`: plan as if these base backups were gone (a dry run of base retention).
   */
  async function applyWalRetention(input: {
    cluster: string;
    dryRun?: boolean;
    withoutBackups?: string[];
  }): Promise<WalRetentionResult> {
    const repo = openRepository(config, input.cluster);
    const archive = repo.wal;
    // Backups are read before the WAL: a backup committed in between is newer, and one deleted in
    // between only makes this run keep more.
    const gone = new Set(input.withoutBackups ?? []);
    const all = await repo.baseBackups();
    const backups = all.filter((b) => !gone.has(b.backupId));
    const records = await archive.list();
    const window = config.walRetention.window;
    const ms = parseWindow(window)!;
    const now = new Date();
    const decision = planWalRetention([...records.keys()], backups, {
      ms,
      now,
      timelines: await recentTimelines(config, env, archive, records, windowAnchor(backups, ms, now)),
    });
    const awaiting = await offsiteGate(config, repo, input.cluster);
    const deleted: string[] = [];
    const waiting: { name: string; repositories: string[] }[] = [];
    let bytesFreed = 0;
    // Oldest first: an interrupted run leaves the archive contiguous from its oldest file.
    for (const { name } of decision.delete) {
      // Even WAL older than every base backup kept here waits: an offsite repository may still keep
      // an older base backup that needs it. What the remote's own policy does not hold (below its
      // oldest base backup) its check records as not held, and that goes without waiting.
      const repositories = awaiting(`${input.cluster}/wal/${name}`);
      if (repositories.length > 0) {
        waiting.push({ name, repositories });
        continue;
      }
      if (!input.dryRun) await archive.remove(name);
      deleted.push(name);
      bytesFreed += records.get(name)!.bytes;
    }
    return {
      dryRun: !!input.dryRun,
      deleted,
      kept: decision.keep.length + waiting.length,
      bytesFreed,
      keepFrom: decision.keepFrom,
      ranges: decision.ranges,
      window,
      waitingOffsite: waiting.length,
      waitingOffsiteFiles: waiting.slice(0, 20),
    };
  }

  async function walArchiveSize(input: { cluster: string }): Promise<WalArchiveSize> {
    const records = await openRepository(config, input.cluster).wal.list();
    const bytes = [...records.values()].reduce((sum, r) => sum + r.bytes, 0);
    const limit = config.walMaintenance.archiveSizeAlertBytes;
    const result: WalArchiveSize = { files: records.size, bytes };
    if (limit !== undefined && bytes > limit) {
      result.alert = `cluster "${input.cluster}": the WAL archive holds ${formatBytes(bytes)} in ${records.size} files, over the alert threshold of ${formatBytes(limit)} (walMaintenance.archiveSizeAlertBytes)`;
    }
    return result;
  }

  return { archiverHealth, applyWalRetention, walArchiveSize };
}

/** Segments completed before the one being written and not archived yet (by number, on any timeline). */
function segmentsWaiting(lastArchivedWal: string | null, currentLsn: string | null): number | null {
  if (!currentLsn) return null;
  const current = segmentOf(parseLsn(currentLsn));
  // Segment, .partial and .backup names all start with the segment's 24 hex digits.
  const last = lastArchivedWal ? parseSegmentName(lastArchivedWal.slice(0, 24))?.segment : undefined;
  if (last === undefined) return null;
  const waiting = current - 1n - last;
  return waiting > 0n ? Number(waiting) : 0;
}

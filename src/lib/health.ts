// What healthCheck and the metrics see of a cluster, the alerts that follow from it, and when an
// alert is worth a notification. Pure: the activities collect, this decides.
import { formatBytes } from './diskSpace.js';
import type { ReplicationStatus } from './replication.js';

export interface BackupStatus {
  kind: 'logical' | 'base';
  /** The database of a logical backup. */
  database?: string;
  /** Finish time of the newest committed backup; null when there is none. */
  lastAt: string | null;
  lastBytes: number | null;
  /** Start of the oldest committed backup (the "never verified" clock starts there). */
  firstAt: string | null;
  /** Newest successful verify-by-restore of any backup of it. */
  lastVerifiedAt: string | null;
}

export interface ArchiverStatus {
  secondsSinceLastArchived: number | null;
  segmentsWaiting: number | null;
  failedCount: number;
  /** The archiver's own alerts (archive_mode off, failing archive_command, lag). */
  alerts: string[];
}

export interface OffsiteStatus {
  repository: string;
  /** Committed local objects the remote lacks. */
  missing: number;
  /** Of those, committed longer ago than the grace period. */
  missingPastGrace: number;
  /** Set when the remote could not be listed. */
  error?: string;
}

/**
 * What local retention would delete but keeps because an offsite repository has neither confirmed
 * it nor declined it by its own policy (src/lib/offsiteConfirmed.ts), per repository.
 */
export interface OffsiteWaitingStatus {
  repository: string;
  backups: number;
  /** WAL files waiting for it, of the oldest the WAL plan lists. */
  walFiles: number;
  /** The oldest waiting backup or WAL file (`<cluster>/base/<id>`, `<cluster>/wal/<name>`) and when it was committed. */
  oldest: { what: string; committedAt: string };
}

/** Per repository, from every waiting backup and WAL file and the repositories each waits for. */
export function offsiteWaitingStatus(
  items: readonly { what: string; committedAt: string; repositories: readonly string[] }[],
): OffsiteWaitingStatus[] {
  const out = new Map<string, OffsiteWaitingStatus>();
  for (const item of items) {
    for (const repository of item.repositories) {
      const s = out.get(repository) ?? {
        repository,
        backups: 0,
        walFiles: 0,
        oldest: { what: item.what, committedAt: item.committedAt },
      };
      if (item.what.split('/')[1] === 'wal') s.walFiles++;
      else s.backups++;
      if (item.committedAt < s.oldest.committedAt) s.oldest = { what: item.what, committedAt: item.committedAt };
      out.set(repository, s);
    }
  }
  return [...out.values()].sort((a, b) => a.repository.localeCompare(b.repository));
}

export interface HealthSnapshot {
  cluster: string;
  at: string;
  backups: BackupStatus[];
  /** Undefined when the cluster could not be reached (then `unreachable` says why). */
  archiver?: ArchiverStatus;
  unreachable?: string;
  repository: { name: string; totalBytes: number; freeBytes: number };
  offsite: OffsiteStatus[];
  /** The cluster's WAL archive in the repository (stored bytes); undefined when it could not be listed. */
  walArchive?: { files: number; bytes: number };
  /** Stored bytes of every committed backup of the cluster, per kind. */
  stored?: { logical: number; base: number };
  /** What local retention keeps only because an offsite repository has not confirmed it. */
  offsiteWaiting?: OffsiteWaitingStatus[];
  /** Why retention's dry plans could not run (a corrupt record, an unreadable history file). */
  retentionError?: string;
  /** The standbys (clusters that list some): src/lib/replication.ts, alerts by replicationAlerts. */
  replication?: ReplicationStatus;
}

export interface HealthThresholds {
  maxBackupAgeHours: number;
  maxBaseBackupAgeDays: number;
  maxVerifiedRestoreAgeDays: number;
  maxRepositoryUsedPercent: number;
  /** Alert when the WAL archive stores more (config walMaintenance.archiveSizeAlertBytes); unset: never. */
  maxWalArchiveBytes?: number;
  /** Alert when what local retention keeps for an offsite confirmation was committed longer ago (default 48). */
  offsiteWaitingHours?: number;
}

export interface Alert {
  /** Stable identity (what fires), for deciding whether to notify again. */
  key: string;
  message: string;
}

const hours = (ms: number) => ms / 3_600_000;
const age = (from: string, now: Date) => now.getTime() - new Date(from).getTime();
const show = (ms: number) =>
  ms >= 172_800_000 ? `${Math.floor(ms / 86_400_000)} days` : `${hours(ms).toFixed(1)} hours`;

export function usedPercent(repository: HealthSnapshot['repository']): number {
  return repository.totalBytes === 0
    ? 0
    : (100 * (repository.totalBytes - repository.freeBytes)) / repository.totalBytes;
}

/** Every threshold the snapshot crosses, one alert each. */
export function evaluateHealth(s: HealthSnapshot, t: HealthThresholds): Alert[] {
  const now = new Date(s.at);
  const alerts: Alert[] = [];
  const c = `cluster "${s.cluster}"`;
  const logical = s.backups.filter((b) => b.kind === 'logical');
  if (logical.length === 0)
    alerts.push({ key: 'backup-missing', message: `${c}: no logical backup in the repository` });
  for (const b of logical) {
    const what = `${s.cluster}/${b.database}`;
    if (!b.lastAt) {
      alerts.push({ key: `backup-missing:${b.database}`, message: `${what}: no logical backup in the repository` });
      continue;
    }
    if (hours(age(b.lastAt, now)) > t.maxBackupAgeHours) {
      alerts.push({
        key: `backup-stale:${b.database}`,
        message: `${what}: the newest backup finished ${show(age(b.lastAt, now))} ago (threshold ${t.maxBackupAgeHours} hours)`,
      });
    }
    const since = b.lastVerifiedAt ?? b.firstAt!;
    if (age(since, now) > t.maxVerifiedRestoreAgeDays * 86_400_000) {
      alerts.push({
        key: `verify-stale:${b.database}`,
        message: `${what}: ${b.lastVerifiedAt ? `the last verified restore was ${show(age(since, now))} ago` : `no backup verified by a restore in ${show(age(since, now))}`} (threshold ${t.maxVerifiedRestoreAgeDays} days)`,
      });
    }
  }
  const base = s.backups.find((b) => b.kind === 'base');
  if (base?.lastAt && age(base.lastAt, now) > t.maxBaseBackupAgeDays * 86_400_000) {
    alerts.push({
      key: 'base-stale',
      message: `${c}: the newest base backup finished ${show(age(base.lastAt, now))} ago (threshold ${t.maxBaseBackupAgeDays} days): point-in-time recovery replays ever more WAL`,
    });
  }
  // Archived WAL without a base backup to replay it onto: point-in-time recovery is impossible.
  if (!base?.lastAt && s.walArchive && s.walArchive.files > 0) {
    alerts.push({
      key: 'base-missing',
      message: `${c}: WAL is archived (${s.walArchive.files} files) but there is no base backup: point-in-time recovery is impossible until \`pgwarden base-backup --cluster ${s.cluster}\` or the base-weekly schedule runs`,
    });
  }
  if (s.walArchive && t.maxWalArchiveBytes !== undefined && s.walArchive.bytes > t.maxWalArchiveBytes) {
    alerts.push({
      key: 'wal-archive-size',
      message: `${c}: the WAL archive holds ${formatBytes(s.walArchive.bytes)} in ${s.walArchive.files} files, over the alert threshold of ${formatBytes(t.maxWalArchiveBytes)} (walMaintenance.archiveSizeAlertBytes)`,
    });
  }
  if (s.unreachable) alerts.push({ key: 'unreachable', message: `${c}: cannot connect: ${s.unreachable}` });
  // The archiver's messages are already precise; keyed by their kind so a changing count does not re-notify.
  for (const m of s.archiver?.alerts ?? []) alerts.push({ key: `archiver:${archiverAlertKind(m)}`, message: m });
  const used = usedPercent(s.repository);
  if (used > t.maxRepositoryUsedPercent) {
    alerts.push({
      key: 'repository-full',
      message: `repository "${s.repository.name}" is ${used.toFixed(0)}% full (threshold ${t.maxRepositoryUsedPercent}%)`,
    });
  }
  for (const o of s.offsite) {
    if (o.error)
      alerts.push({
        key: `offsite-unreachable:${o.repository}`,
        message: `offsite "${o.repository}": cannot list it: ${o.error}`,
      });
    else if (o.missingPastGrace > 0) {
      alerts.push({
        key: `offsite-drift:${o.repository}`,
        message: `offsite "${o.repository}" lacks ${o.missingPastGrace} object${o.missingPastGrace === 1 ? '' : 's'} of ${s.cluster} (${o.missing} with recent ones): run \`pgwarden offsite sync --cluster ${s.cluster}\``,
      });
    }
  }
  // Offsite runs daily: what it should hold and has not confirmed two days after its commit is behind.
  const waitingHours = t.offsiteWaitingHours ?? 48;
  for (const w of s.offsiteWaiting ?? []) {
    const waited = age(w.oldest.committedAt, now);
    if (hours(waited) <= waitingHours) continue;
    const what = [
      w.backups > 0 ? `${w.backups} backup${w.backups === 1 ? '' : 's'}` : '',
      w.walFiles > 0 ? `${w.walFiles} WAL file${w.walFiles === 1 ? '' : 's'}` : '',
    ]
      .filter(Boolean)
      .join(' and ');
    alerts.push({
      key: `offsite-waiting:${w.repository}`,
      message: `offsite "${w.repository}" has not confirmed ${what} of ${s.cluster} that local retention would delete (the oldest, ${w.oldest.what}, committed ${show(waited)} ago; threshold ${waitingHours} hours): they stay on the local disk until its check confirms them; run \`pgwarden offsite sync --cluster ${s.cluster}\` and read its check`,
    });
  }
  if (s.retentionError) {
    alerts.push({
      key: 'retention-plan',
      message: `local retention of ${s.cluster} cannot plan (${s.retentionError}): nothing is deleted and what waits for offsite is unknown; run \`pgwarden retention --cluster ${s.cluster}\``,
    });
  }
  return alerts;
}

function archiverAlertKind(message: string): string {
  if (message.includes('archive_mode is off')) return 'off';
  if (message.includes('archive_command is empty')) return 'empty';
  if (message.includes('is failing')) return 'failing';
  return 'lag';
}

/** What was last sent for a cluster (kept beside its backups, see healthState in the activities). */
export interface NotifiedState {
  keys: string[];
  sentAt: string | null;
  /** Each key's message as sent, for the line saying it cleared. */
  messages?: Record<string, string>;
}

export type NotificationKind = 'alert' | 'resolved';

/**
 * Notify when the set of alerts changes (something new fires: `alert`; something stops firing, or
 * all is clear again: `resolved`, naming what cleared), and repeat a firing set every
 * `repeatHours`: a pager is not woken every 15 minutes for the same problem.
 */
export function notificationDue(
  previous: NotifiedState,
  alerts: readonly Alert[],
  now: Date,
  repeatHours: number,
): NotificationKind | undefined {
  const keys = alerts.map((a) => a.key).sort();
  if (keys.length === 0) return previous.keys.length > 0 ? 'resolved' : undefined;
  const changed = keys.some((k) => !previous.keys.includes(k));
  const repeat = previous.sentAt === null || age(previous.sentAt, now) >= repeatHours * 3_600_000;
  if (changed || repeat) return 'alert';
  return resolvedKeys(previous, alerts).length > 0 ? 'resolved' : undefined;
}

/** What was notified as firing and fires no more. */
export function resolvedKeys(previous: NotifiedState, alerts: readonly Alert[]): string[] {
  return previous.keys.filter((k) => !alerts.some((a) => a.key === k));
}

// What a cluster's standbys look like, read from both ends (src/postgres/replication.ts), and what
// follows from it: which standby is healthy and within the lag limit, in which order a backup would
// take them, why one is left out, and healthCheck's alerts. Pure: the activities read, this decides.
import type { ClusterConfig } from '../config/index.js';
import { formatBytes } from './diskSpace.js';
import { parseLsn } from './wal.js';

export type BackupFrom = 'primary' | 'standby' | 'prefer-standby';

export interface ReplicationSettings {
  backupFrom: BackupFrom;
  lagLimitBytes: number;
  alertLagBytes: number;
  alertLagSeconds: number;
}

export const DEFAULT_LAG_LIMIT_BYTES = 1024 * 1024;
export const DEFAULT_ALERT_LAG_BYTES = 16 * 1024 * 1024;
export const DEFAULT_ALERT_LAG_SECONDS = 300;

/** The cluster's replication settings with their defaults (backupFrom: prefer-standby when standbys are listed). */
export function replicationSettings(
  cluster: Pick<ClusterConfig, 'standbys' | 'backupFrom' | 'replication'>,
): ReplicationSettings {
  const r = cluster.replication ?? {};
  return {
    backupFrom: cluster.backupFrom ?? ((cluster.standbys?.length ?? 0) > 0 ? 'prefer-standby' : 'primary'),
    lagLimitBytes: r.lagLimitBytes ?? DEFAULT_LAG_LIMIT_BYTES,
    alertLagBytes: r.alertLagBytes ?? DEFAULT_ALERT_LAG_BYTES,
    alertLagSeconds: r.alertLagSeconds ?? DEFAULT_ALERT_LAG_SECONDS,
  };
}

/** One row of the primary's pg_stat_replication. */
export interface SenderRow {
  applicationName: string;
  clientAddr: string | null;
  /** streaming, catchup, startup, backup, stopping */
  state: string;
  sentLsn: string | null;
  writeLsn: string | null;
  flushLsn: string | null;
  replayLsn: string | null;
  /** pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) */
  replayLagBytes: number | null;
  /** replay_lag in seconds (null once the standby has caught up and the primary is idle) */
  replayLagSeconds: number | null;
}

/** What the primary says: its current WAL position and its WAL senders. */
export interface PrimaryReplication {
  currentLsn: string;
  senders: SenderRow[];
}

/** What a standby says of itself. */
export interface StandbySelf {
  inRecovery: boolean;
  receiveLsn: string | null;
  replayLsn: string | null;
  lastReplayAt: string | null;
  /** now() − pg_last_xact_replay_timestamp() on the standby's clock */
  secondsSinceReplay: number | null;
  replayPaused: boolean;
  /** pg_get_wal_replay_pause_state() (PostgreSQL 14+): not paused, pause requested, paused */
  pauseState?: string;
  /** pg_stat_wal_receiver.status; null when no WAL receiver runs */
  receiverStatus: string | null;
}

export interface StandbyReading {
  name: string;
  host: string;
  port: number;
  self?: StandbySelf;
  /** Why it could not be read. */
  error?: string;
}

/** One standby as healthCheck, the metrics and the backup source choice see it. */
export interface StandbyState {
  name: string;
  host: string;
  port: number;
  reachable: boolean;
  inRecovery: boolean | null;
  /** The primary lists it streaming and (when readable) its WAL receiver streams. */
  streaming: boolean;
  replayPaused: boolean;
  lagBytes: number | null;
  lagSeconds: number | null;
  /** What keeps it from being a backup source, in words; empty when healthy. */
  problems: string[];
  /** Healthy and within lagLimitBytes: a backup may come from it. */
  eligible: boolean;
}

export interface ReplicationStatus {
  /** Undefined when the primary could not be read (then `primaryError`). */
  primary?: PrimaryReplication;
  primaryError?: string;
  standbys: StandbyState[];
}

/** The primary's row for a standby: by application_name, else by client address when exactly one matches. */
export function senderFor(
  senders: readonly SenderRow[],
  standby: { name: string; host: string },
): SenderRow | undefined {
  const byName = senders.find((s) => s.applicationName === standby.name);
  if (byName) return byName;
  const byAddr = senders.filter((s) => s.clientAddr !== null && s.clientAddr === standby.host);
  return byAddr.length === 1 ? byAddr[0] : undefined;
}

const lsnDiff = (a: string, b: string) => Number(parseLsn(a) - parseLsn(b));

/** Both ends' readings joined into each standby's state, judged against the settings. */
export function standbyStates(
  primary: PrimaryReplication | undefined,
  readings: readonly StandbyReading[],
  settings: ReplicationSettings,
): StandbyState[] {
  return readings.map((r) => {
    const sender = primary ? senderFor(primary.senders, r) : undefined;
    const self = r.self;
    const problems: string[] = [];
    let lagBytes = sender?.replayLagBytes ?? null;
    if (lagBytes === null && primary && self?.inRecovery && self.replayLsn)
      lagBytes = Math.max(0, lsnDiff(primary.currentLsn, self.replayLsn));
    const lagSeconds =
      sender?.replayLagSeconds ?? (lagBytes === 0 ? 0 : lagBytes !== null ? (self?.secondsSinceReplay ?? null) : null);
    if (!self) problems.push(`unreachable: ${r.error ?? 'not read'}`);
    else if (!self.inRecovery) problems.push('not in recovery (promoted?)');
    const receiverStreams = self ? self.receiverStatus === 'streaming' : undefined;
    const senderStreams = primary ? sender?.state === 'streaming' : undefined;
    const streaming =
      receiverStreams !== false && senderStreams !== false && (self !== undefined || sender !== undefined);
    if (self?.inRecovery !== false && !streaming) {
      if (primary && !sender) problems.push('not streaming: not in the primary’s pg_stat_replication');
      else if (sender && sender.state !== 'streaming')
        problems.push(`not streaming: the primary reports ${sender.state}`);
      else if (self) problems.push(`not streaming: its WAL receiver is ${self.receiverStatus ?? 'not running'}`);
    }
    const replayPaused = self?.replayPaused ?? false;
    if (replayPaused) problems.push(`replay paused${self?.pauseState ? ` (${self.pauseState})` : ''}`);
    const healthy = problems.length === 0;
    if (healthy && lagBytes === null) problems.push('lag unknown (the primary could not be read)');
    else if (healthy && lagBytes! > settings.lagLimitBytes)
      problems.push(
        `replay ${formatBytes(lagBytes!)} behind, over the lag limit of ${formatBytes(settings.lagLimitBytes)}`,
      );
    return {
      name: r.name,
      host: r.host,
      port: r.port,
      reachable: self !== undefined,
      inRecovery: self ? self.inRecovery : null,
      streaming,
      replayPaused,
      lagBytes,
      lagSeconds,
      problems,
      eligible: problems.length === 0,
    };
  });
}

/** The order a backup would take the standbys: eligible ones, least lag first (then by name). */
export function rankStandbys(states: readonly StandbyState[]): StandbyState[] {
  return states
    .filter((s) => s.eligible)
    .sort((a, b) => (a.lagBytes ?? 0) - (b.lagBytes ?? 0) || a.name.localeCompare(b.name));
}

export type BackupSource =
  | { role: 'standby'; standby: string; lagBytes: number }
  | { role: 'primary'; reason: string }
  | { role: 'none'; reason: string };

const why = (states: readonly StandbyState[]) =>
  states.map((s) => `${s.name}: ${s.problems.join(', ')}`).join('; ') || 'no standbys configured';

/** Where a backup would come from under `backupFrom` (`none`: backupFrom "standby" and no standby is fit). */
export function chooseBackupSource(states: readonly StandbyState[], backupFrom: BackupFrom): BackupSource {
  if (backupFrom === 'primary') return { role: 'primary', reason: 'backupFrom is "primary"' };
  const best = rankStandbys(states)[0];
  if (best) return { role: 'standby', standby: best.name, lagBytes: best.lagBytes ?? 0 };
  if (backupFrom === 'standby') return { role: 'none', reason: `no standby can serve a backup (${why(states)})` };
  return { role: 'primary', reason: `no standby can serve a backup (${why(states)})` };
}

export interface ReplicationAlert {
  key: string;
  message: string;
}

/** healthCheck's alerts, keyed by standby and kind (a changing lag does not notify again). */
export function replicationAlerts(
  cluster: string,
  status: ReplicationStatus,
  settings: ReplicationSettings,
): ReplicationAlert[] {
  const alerts: ReplicationAlert[] = [];
  for (const s of status.standbys) {
    const who = `standby "${s.name}" of ${cluster} (${s.host}:${s.port})`;
    const add = (kind: string, message: string) => alerts.push({ key: `standby-${kind}:${s.name}`, message });
    if (!s.reachable) add('unreachable', `${who}: ${s.problems[0]}`);
    else if (s.inRecovery === false)
      add(
        'promoted',
        `${who} is not in recovery: it was promoted, or is not a standby; it no longer replays the primary`,
      );
    if (s.inRecovery !== false && !s.streaming) {
      const p = s.problems.find((m) => m.startsWith('not streaming'));
      if (p) add('not-streaming', `${who}: ${p}`);
    }
    if (s.replayPaused)
      add(
        'replay-paused',
        `${who}: WAL replay is paused (pg_wal_replay_pause()); resume it with pg_wal_replay_resume()`,
      );
    const overBytes = s.lagBytes !== null && s.lagBytes > settings.alertLagBytes;
    const overSeconds = s.lagSeconds !== null && s.lagSeconds > settings.alertLagSeconds;
    if (overBytes || overSeconds)
      add(
        'lag',
        `${who}: replay is ${s.lagBytes === null ? 'an unknown amount' : formatBytes(s.lagBytes)}${s.lagSeconds !== null ? ` (${Math.round(s.lagSeconds)} s)` : ''} behind the primary (alert thresholds ${formatBytes(settings.alertLagBytes)}, ${settings.alertLagSeconds} s: replication.alertLagBytes, alertLagSeconds)`,
      );
  }
  return alerts;
}

// Failed runs and schedules that do not run, as healthCheck hears of them from Temporal: which
// procedure a closed run belongs to, the record of each procedure's newest closed run (kept beside
// the cluster's backups, so a repeated or retried check changes nothing), and the alerts that
// follow. Pure: the activity asks Temporal, this decides.
import type { Alert } from './health.js';
import { kindOfWorkflow, type RunKind } from './visibility.js';

/**
 * A procedure's runs share one record: its kind and variant, cluster and database. Variants that
 * do different work are apart, so one's success never clears the other's failure: a PITR
 * rehearsal from a live recovery, offsite-wal (the 6-hourly WAL shipping) and offsite-check from
 * the daily offsite sync, a retention plan from retention --apply.
 */
export type Procedure = RunKind | 'pitr-rehearsal' | 'offsite-wal' | 'offsite-check' | 'retention-plan';

/** The variant a run's input asks for (read from its first history event). */
export type RunVariant = 'rehearsal' | 'wal' | 'check' | 'plan';

/** A closed run, as the visibility list reports it (labels from search attributes, memo or id). */
export interface ClosedRun {
  workflowId: string;
  runId: string;
  type: string;
  /** Temporal's status name: COMPLETED, FAILED, TERMINATED, TIMED_OUT, CANCELLED, CONTINUED_AS_NEW. */
  status: string;
  startedAt: string;
  closedAt: string;
  cluster?: string;
  database?: string;
  /** What its input asks for, where that makes it a procedure of its own (see Procedure). */
  variant?: RunVariant;
  /** The run that started it as a child (a "*" backup's or verification's per-database runs). */
  parentRunId?: string;
}

/** A failed run that a later success replaced before any notification named it: alerted once all the same. */
export interface UnheardFailure {
  workflowId: string;
  runId: string;
  status: string;
  closedAt: string;
  error: string;
}

/** The newest closed run of one procedure that healthCheck has seen. */
export interface ProcedureRecord {
  procedure: Procedure;
  cluster: string;
  database?: string;
  workflowId: string;
  runId: string;
  ok: boolean;
  status: string;
  startedAt: string;
  closedAt: string;
  /** The failure's one line (failed runs only). */
  error?: string;
  /** Failed runs of this procedure seen since the record began (a Prometheus counter). */
  failures: number;
  parentRunId?: string;
  /** The newest failure no notification has named yet, kept until one does. */
  unheard?: UnheardFailure;
}

export interface RunWatchState {
  /** Closed runs up to this time have been looked at (null before the first look). */
  lookedAt: string | null;
  procedures: Record<string, ProcedureRecord>;
}

/** How far back the first look goes, and how much each look overlaps the last (visibility lags a little). */
export const FIRST_LOOK_HOURS = 24;
export const LOOK_OVERLAP_MS = 10 * 60_000;
/**
 * A procedure that has not run for this long is forgotten (a one-off restore, a removed database);
 * a failure forgotten so is notified as no longer tracked, never as resolved.
 */
export const FORGET_AFTER_DAYS = 35;
const FORGET_AFTER_MS = FORGET_AFTER_DAYS * 86_400_000;

export const FAILED_STATUSES = ['FAILED', 'TERMINATED', 'TIMED_OUT'];

/** Where the next look starts. */
export function lookFrom(state: RunWatchState, now: Date): Date {
  return state.lookedAt
    ? new Date(Date.parse(state.lookedAt) - LOOK_OVERLAP_MS)
    : new Date(now.getTime() - FIRST_LOOK_HOURS * 3_600_000);
}

/** Cluster and database from a run id `pgwarden/<cluster>/<database>/...` (per-database kinds only). */
export function labelsFromId(workflowId: string, kind: RunKind): { cluster?: string; database?: string } {
  const parts = workflowId.split('/');
  if (parts[0] !== 'pgwarden' || parts.length < 3) return {};
  const perDatabase = kind === 'full' || kind === 'verify' || kind === 'restore';
  return { cluster: parts[1], ...(perDatabase ? { database: parts[2] === 'all' ? '*' : parts[2] } : {}) };
}

/** The procedure a run belongs to, or undefined for runs that are not pgwarden's or not this cluster's. */
export function procedureOf(run: ClosedRun): Procedure | undefined {
  const kind = kindOfWorkflow(run.type);
  if (kind === 'pitr' && (run.variant === 'rehearsal' || run.workflowId.includes('rehearsal'))) return 'pitr-rehearsal';
  // Scheduled offsite-wal runs are also told by their id (`pgwarden/<cluster>/offsite-wal-<time>`) when the input cannot be read.
  if (kind === 'offsite' && (run.variant === 'wal' || (!run.variant && run.workflowId.includes('/offsite-wal'))))
    return 'offsite-wal';
  if (kind === 'offsite' && run.variant === 'check') return 'offsite-check';
  if (kind === 'retention' && run.variant === 'plan') return 'retention-plan';
  return kind;
}

/** The variant a run's input asks for: offsiteSync walOnly / checkOnly, retention without apply, a PITR rehearsal. */
export function variantOf(type: string, input: unknown): RunVariant | undefined {
  const i = (input ?? {}) as { walOnly?: unknown; checkOnly?: unknown; apply?: unknown; mode?: unknown };
  switch (kindOfWorkflow(type)) {
    case 'offsite':
      return i.walOnly === true ? 'wal' : i.checkOnly === true ? 'check' : undefined;
    case 'retention':
      return i.apply === true ? undefined : 'plan';
    case 'pitr':
      return i.mode === 'rehearsal' ? 'rehearsal' : undefined;
    default:
      return undefined;
  }
}

export const procedureKey = (procedure: Procedure, database?: string) =>
  `${procedure}${database ? `:${database}` : ''}`;

const FAILED_PREFIX = 'run-failed:';
/** The alert key of a procedure's failure, and of a failure a success replaced before it was notified (`#<runId>`). */
export const runFailedKey = (key: string, unheardRunId?: string) =>
  `${FAILED_PREFIX}${key}${unheardRunId ? `#${unheardRunId}` : ''}`;

/**
 * Every procedure's newest run, updated with what the look found; older or already seen runs
 * change nothing. `heard`: the alert keys the last notification sent as firing. A failure that a
 * success replaces before a notification named it (both closed within one look, or the channels
 * were down) is kept as `unheard` until one does: it is alerted once, then the all-clear follows
 * (not on the first look, which catches up on the last day).
 */
export function recordRuns(
  state: RunWatchState,
  cluster: string,
  runs: readonly (ClosedRun & { error?: string })[],
  now: Date,
  heard: readonly string[] = [],
): RunWatchState {
  const procedures = { ...state.procedures };
  for (const run of [...runs].sort((a, b) => a.closedAt.localeCompare(b.closedAt))) {
    const procedure = procedureOf(run);
    const failed = FAILED_STATUSES.includes(run.status);
    // A cancelled run was asked to stop by an operator: neither a failure nor a success.
    if (!procedure || run.cluster !== cluster || (!failed && run.status !== 'COMPLETED')) continue;
    const key = procedureKey(procedure, run.database);
    const before = procedures[key];
    if (before && (before.closedAt > run.closedAt || before.runId === run.runId)) continue;
    // The first look (a new deployment, a lost record) catches up on a day: failures already followed by a success are history.
    const replacedUnheard: UnheardFailure | undefined =
      state.lookedAt !== null && before && !before.ok && !failed && !heard.includes(runFailedKey(key))
        ? {
            workflowId: before.workflowId,
            runId: before.runId,
            status: before.status,
            closedAt: before.closedAt,
            error: before.error ?? before.status,
          }
        : undefined;
    const unheard = replacedUnheard ?? before?.unheard;
    procedures[key] = {
      procedure,
      cluster,
      ...(run.database ? { database: run.database } : {}),
      workflowId: run.workflowId,
      runId: run.runId,
      ok: !failed,
      status: run.status,
      startedAt: run.startedAt,
      closedAt: run.closedAt,
      ...(failed ? { error: run.error ?? run.status } : {}),
      failures: (before?.failures ?? 0) + (failed ? 1 : 0),
      ...(run.parentRunId ? { parentRunId: run.parentRunId } : {}),
      ...(unheard ? { unheard } : {}),
    };
  }
  for (const [key, record] of Object.entries(procedures)) {
    let r = record;
    if (r.unheard && heard.includes(runFailedKey(key, r.unheard.runId))) {
      const { unheard: _, ...rest } = r;
      procedures[key] = r = rest;
    }
    if (now.getTime() - Date.parse(r.closedAt) > FORGET_AFTER_MS && !r.unheard) delete procedures[key];
  }
  return { lookedAt: now.toISOString(), procedures };
}

const what = (r: Pick<ProcedureRecord, 'procedure' | 'cluster' | 'database'>) =>
  `${r.procedure === 'pitr-rehearsal' ? 'PITR rehearsal' : r.procedure} of ${r.cluster}${r.database ? `/${r.database}` : ''}`;

const failedLine = (r: Pick<ProcedureRecord, 'procedure' | 'cluster' | 'database'>, f: UnheardFailure) =>
  `${what(r)} ${f.status === 'FAILED' ? 'failed' : f.status === 'TIMED_OUT' ? 'timed out' : 'was terminated'}: ${f.workflowId} at ${f.closedAt}: ${f.error}`;

/**
 * One alert per procedure whose newest run failed, naming the run and its error; it clears when a
 * later run succeeds. A failure a success replaced before it was notified alerts once on its own
 * key. A "*" run that failed because one of its per-database children failed is told by the
 * child's alert (naming the database), not twice.
 */
export function runAlerts(state: RunWatchState): Alert[] {
  const entries = Object.entries(state.procedures).sort(([a], [b]) => a.localeCompare(b));
  const failedParents = new Set(entries.filter(([, r]) => !r.ok && r.parentRunId).map(([, r]) => r.parentRunId));
  const alerts: Alert[] = [];
  for (const [key, r] of entries) {
    if (r.unheard)
      alerts.push({
        key: runFailedKey(key, r.unheard.runId),
        message: `${failedLine(r, r.unheard)}${r.ok ? ` (${r.workflowId} succeeded since)` : ''}`,
      });
    if (!r.ok && !failedParents.has(r.runId))
      alerts.push({ key: runFailedKey(key), message: failedLine(r, { ...r, error: r.error ?? r.status }) });
  }
  return alerts;
}

/**
 * The line for a `run-failed:` alert key that no longer fires (undefined for other keys):
 * "succeeded again" only when a run of it succeeded; a forgotten or lost record is "no longer
 * tracked", not resolved.
 */
export function runResolvedLine(state: RunWatchState, alertKey: string, message?: string): string | undefined {
  if (!alertKey.startsWith(FAILED_PREFIX)) return undefined;
  const [key, unheardRunId] = alertKey.slice(FAILED_PREFIX.length).split('#');
  const r = state.procedures[key!];
  if (r?.ok) return `${what(r)} succeeded again: ${r.workflowId} at ${r.closedAt}`;
  const was = message ?? alertKey;
  if (!r)
    return `No longer tracked, not resolved (no run of it for ${FORGET_AFTER_DAYS} days, or healthCheck's record of runs was lost): ${was}`;
  if (unheardRunId) return `Notified; ${what(r)} has failed again since (${r.workflowId}): ${was}`;
  return `Now told by the failed run of each database: ${was}`;
}

/** The one line of a failure: its innermost cause's message, first line, bounded. */
export function failureLine(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e && e.cause instanceof Error) e = e.cause as typeof e;
  const line = (e?.message ?? String(err)).split('\n')[0]!.trim();
  return line.length > 300 ? `${line.slice(0, 299)}…` : line;
}

/** A configured schedule as Temporal describes it (exists: false where it is missing). */
export interface ScheduleStatus {
  id: string;
  exists: boolean;
  paused?: boolean;
  note?: string;
  /** When it last started a run (else when it was created). */
  lastActionAt?: string;
  createdAt?: string;
  /** The gap between its next two action times: how often it runs. */
  periodMs?: number;
  /** A run it started that is still running (the overlap policy skips the next ones meanwhile). */
  running?: string;
}

/** A schedule is overdue once a period and a tenth of it (at least 30 minutes) passed without a run starting. */
export function overdueAfterMs(periodMs: number): number {
  return periodMs + Math.max(periodMs / 10, 30 * 60_000);
}

/**
 * A paused schedule (its job does not run when due), one that has not started a run when due (its
 * previous run still running, so the next ones are skipped; a tick missed past the catch-up
 * window), and a configured schedule that is missing while others of the cluster exist (deleted
 * behind `schedules apply`'s back). Where none exists the operator runs pgwarden without
 * schedules: nothing to say. A schedule whose runs fail raises the failed-run alert instead.
 */
export function scheduleAlerts(cluster: string, schedules: readonly ScheduleStatus[], now: Date): Alert[] {
  const alerts: Alert[] = [];
  const anyExists = schedules.some((s) => s.exists);
  for (const s of schedules) {
    const since = s.lastActionAt ?? s.createdAt;
    if (s.exists && s.paused) {
      alerts.push({
        key: `schedule-paused:${s.id}`,
        message: `schedule ${s.id} is paused${s.note ? ` (${s.note})` : ''}: its runs do not start (pgwarden schedules unpause ${s.id})`,
      });
    } else if (s.exists && s.periodMs && since && now.getTime() - Date.parse(since) > overdueAfterMs(s.periodMs)) {
      alerts.push({
        key: `schedule-overdue:${s.id}`,
        message: `schedule ${s.id} has not started a run since ${since} (it runs every ${(s.periodMs / 3_600_000).toFixed(s.periodMs < 3_600_000 ? 2 : 0)} hours)${s.running ? `: its run ${s.running} is still running, so the next ones are skipped` : ''}`,
      });
    } else if (!s.exists && anyExists) {
      alerts.push({
        key: `schedule-missing:${s.id}`,
        message: `schedule ${s.id} is configured for ${cluster} but does not exist: run \`pgwarden schedules apply\``,
      });
    }
  }
  return alerts;
}

// Failed runs and schedules that do not run, as healthCheck hears of them from Temporal: which
// procedure a closed run belongs to, the record of each procedure's newest closed run (kept beside
// the cluster's backups, so a repeated or retried check changes nothing), and the alerts that
// follow. Pure: the activity asks Temporal, this decides.
import type { Alert } from './health.js';
import { kindOfWorkflow, type RunKind } from './visibility.js';

/** A procedure's runs share one record: its kind (`pitr-rehearsal` apart from `pitr`), cluster and database. */
export type Procedure = RunKind | 'pitr-rehearsal';

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
}

export interface RunWatchState {
  /** Closed runs up to this time have been looked at (null before the first look). */
  lookedAt: string | null;
  procedures: Record<string, ProcedureRecord>;
}

/** How far back the first look goes, and how much each look overlaps the last (visibility lags a little). */
export const FIRST_LOOK_HOURS = 24;
export const LOOK_OVERLAP_MS = 10 * 60_000;
/** A procedure that has not run for this long is forgotten (a one-off restore, a removed database). */
const FORGET_AFTER_MS = 35 * 86_400_000;

export const FAILED_STATUSES = ['FAILED', 'TERMINATED', 'TIMED_OUT'];

/** Where the next look starts. */
export function lookFrom(state: RunWatchState, now: Date): Date {
  return state.lookedAt ? new Date(Date.parse(state.lookedAt) - LOOK_OVERLAP_MS) : new Date(now.getTime() - FIRST_LOOK_HOURS * 3_600_000);
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
  if (!kind) return undefined;
  return kind === 'pitr' && run.workflowId.includes('rehearsal') ? 'pitr-rehearsal' : kind;
}

export const procedureKey = (procedure: Procedure, database?: string) => `${procedure}${database ? `:${database}` : ''}`;

/** Every procedure's newest run, updated with what the look found; older or already seen runs change nothing. */
export function recordRuns(state: RunWatchState, cluster: string, runs: readonly (ClosedRun & { error?: string })[], now: Date): RunWatchState {
  const procedures = { ...state.procedures };
  for (const run of [...runs].sort((a, b) => a.closedAt.localeCompare(b.closedAt))) {
    const procedure = procedureOf(run);
    const failed = FAILED_STATUSES.includes(run.status);
    // A cancelled run was asked to stop by an operator: neither a failure nor a success.
    if (!procedure || run.cluster !== cluster || (!failed && run.status !== 'COMPLETED')) continue;
    const key = procedureKey(procedure, run.database);
    const before = procedures[key];
    if (before && (before.closedAt > run.closedAt || before.runId === run.runId)) continue;
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
    };
  }
  for (const [key, r] of Object.entries(procedures)) if (now.getTime() - Date.parse(r.closedAt) > FORGET_AFTER_MS) delete procedures[key];
  return { lookedAt: now.toISOString(), procedures };
}

const what = (r: Pick<ProcedureRecord, 'procedure' | 'cluster' | 'database'>) => `${r.procedure === 'pitr-rehearsal' ? 'PITR rehearsal' : r.procedure} of ${r.cluster}${r.database ? `/${r.database}` : ''}`;

/** One alert per procedure whose newest run failed, naming the run and its error; it clears when a later run succeeds. */
export function runAlerts(state: RunWatchState): Alert[] {
  return Object.entries(state.procedures)
    .filter(([, r]) => !r.ok)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, r]) => ({ key: `run-failed:${key}`, message: `${what(r)} ${r.status === 'FAILED' ? 'failed' : r.status === 'TIMED_OUT' ? 'timed out' : 'was terminated'}: ${r.workflowId} at ${r.closedAt}: ${r.error}` }));
}

/** The all-clear line for a resolved `run-failed:` alert key, or undefined for other keys. */
export function runResolvedLine(state: RunWatchState, alertKey: string): string | undefined {
  if (!alertKey.startsWith('run-failed:')) return undefined;
  const r = state.procedures[alertKey.slice('run-failed:'.length)];
  return r?.ok ? `${what(r)} succeeded again: ${r.workflowId} at ${r.closedAt}` : undefined;
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
      alerts.push({ key: `schedule-paused:${s.id}`, message: `schedule ${s.id} is paused${s.note ? ` (${s.note})` : ''}: its runs do not start (pgwarden schedules unpause ${s.id})` });
    } else if (s.exists && s.periodMs && since && now.getTime() - Date.parse(since) > overdueAfterMs(s.periodMs)) {
      alerts.push({
        key: `schedule-overdue:${s.id}`,
        message: `schedule ${s.id} has not started a run since ${since} (it runs every ${(s.periodMs / 3_600_000).toFixed(s.periodMs < 3_600_000 ? 2 : 0)} hours)${s.running ? `: its run ${s.running} is still running, so the next ones are skipped` : ''}`,
      });
    } else if (!s.exists && anyExists) {
      alerts.push({ key: `schedule-missing:${s.id}`, message: `schedule ${s.id} is configured for ${cluster} but does not exist: run \`pgwarden schedules apply\`` });
    }
  }
  return alerts;
}

// What `pgwarden status` says of a run (its outcome, step, activities, approval) and the exit codes
// scripts read; pure, unit-tested. The commands that print it are in commands/.
import type { ActivityStatus, LiveStatus } from './client.js';
import { UserError } from './errors.js';
import { approvalOf, formatDuration, formatElapsed, formatLocalTime, formatRate, statusWord } from './format.js';
import { formatBytes } from '../lib/diskSpace.js';
import { readHeartbeat } from './progressView.js';
import { kindOfWorkflow } from '../lib/visibility.js';

/** How long `status` waits for a worker to answer the `progress` query. */
export const QUERY_TIMEOUT_MS = 3000;

/** `pgwarden: no workflow <id>` for a run the server does not know, else the error itself. */
export function notFoundAsUserError(workflowId: string): (err: unknown) => never {
  return (err: unknown) => {
    if (err instanceof Error && err.name === 'WorkflowNotFoundError') throw new UserError(`no workflow ${workflowId}`);
    throw err;
  };
}

function activityLine(a: ActivityStatus, now: number): string {
  const hb = readHeartbeat(a.heartbeat);
  const parts: string[] = [];
  if (hb.phase) parts.push(hb.phase);
  if (hb.count)
    parts.push(
      Number.isFinite(hb.count.total)
        ? `${hb.count.done}/${hb.count.total} ${hb.count.unit} (${Math.floor((hb.count.done / Math.max(1, hb.count.total)) * 100)}%)`
        : `${hb.count.done} ${hb.count.unit}`,
    );
  if (hb.bytes !== undefined) {
    const of = hb.totalBytes
      ? ` of ${formatBytes(hb.totalBytes)} (${Math.floor(Math.min(1, hb.bytes / hb.totalBytes) * 100)}%)`
      : '';
    parts.push(`${formatBytes(hb.bytes)}${of}${hb.bytesLabel ? ` ${hb.bytesLabel}` : ''}`);
    // One reading: the rate is the attempt's average, from its start to its newest heartbeat.
    const seconds = a.startedAt && a.heartbeatAt ? (a.heartbeatAt.getTime() - a.startedAt.getTime()) / 1000 : 0;
    if (seconds >= 1 && hb.bytes > 0) parts.push(`${formatRate(hb.bytes / seconds)} average`);
  }
  if (hb.lsn) parts.push(`at ${hb.lsn}`);
  if (a.heartbeatAt) parts.push(`heartbeat ${formatElapsed((now - a.heartbeatAt.getTime()) / 1000)} ago`);
  else if (a.state === 'scheduled') parts.push('waiting for a worker');
  else if (a.startedAt) parts.push(`started ${formatElapsed((now - a.startedAt.getTime()) / 1000)} ago`);
  const attempt =
    a.attempt > 1 ? ` (attempt ${a.attempt}${a.lastFailure ? `; last failure: ${a.lastFailure}` : ''})` : '';
  return `${a.type}${attempt}${parts.length ? `: ${parts.join(', ')}` : ''}`;
}

/**
 * `pgwarden status` exit codes (scripts read them): 0 running, or ended having done what it was
 * started for; 3 ended without doing it (rejected, nobody approved in time); 4 failed, cancelled,
 * terminated or timed out. 1 stays pgwarden's own error (no such run, Temporal unreachable).
 */
export const STATUS_EXIT = { ok: 0, notDone: 3, failed: 4 } as const;

export interface RunOutcome {
  /** One word: recovered, restored, rehearsed, verified, completed, rejected, approval-timed-out, failed, ... */
  word: string;
  /** The line `status` prints after `outcome`. */
  text: string;
  exitCode: number;
}

type Decision = { approver?: string; reason?: string; at?: string };

/** What a closed run came to, from its status and its result (completed) or failure (others); pure. */
export function outcomeOf(status: string, result: unknown, failure?: string): RunOutcome | undefined {
  const failed = (word: string, text: string): RunOutcome => ({ word, text, exitCode: STATUS_EXIT.failed });
  switch (status) {
    case 'RUNNING':
    case 'CONTINUED_AS_NEW':
      return undefined;
    case 'FAILED':
      return failed('failed', `failed: ${failure ?? 'see the run in the Temporal UI'}`);
    case 'TIMED_OUT':
      return failed('timed-out', "timed out: the run's execution timeout passed");
    case 'CANCELLED':
    case 'CANCELED':
      return failed(
        'cancelled',
        `cancelled${failure && !/^workflow execution cancell?ed$/i.test(failure) ? `: ${failure}` : ''}`,
      );
    case 'TERMINATED':
      return failed(
        'terminated',
        `terminated${failure && !/^workflow execution terminated$/i.test(failure) ? `: ${failure}` : ''}`,
      );
  }
  if (result === undefined && failure)
    return {
      word: 'completed',
      text: `completed (its result could not be read: ${failure})`,
      exitCode: STATUS_EXIT.ok,
    };
  const r = (result ?? {}) as Record<string, unknown> & {
    decision?: Decision;
    recovery?: { timeline?: number; reachedLsn?: string };
  };
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const at = (d?: Decision) =>
    d?.at && Number.isFinite(Date.parse(d.at)) ? ` at ${formatLocalTime(new Date(d.at))}` : '';
  const where = [str(r.cluster), str(r.database)].filter(Boolean).join('/');
  switch (r.outcome) {
    case 'rejected':
      return {
        word: 'rejected',
        text: `rejected by ${r.decision?.approver ?? 'someone'}${at(r.decision)}: ${r.decision?.reason ?? '(no reason)'}; nothing was done`,
        exitCode: STATUS_EXIT.notDone,
      };
    case 'timed-out':
      return {
        word: 'approval-timed-out',
        text: 'timed out waiting for approval (nobody approved or rejected in time); nothing was done',
        exitCode: STATUS_EXIT.notDone,
      };
    case 'restored': {
      const kept = str(r.previousDatabase) ? `; the previous database is kept as ${str(r.previousDatabase)}` : '';
      const by = r.decision?.approver
        ? `, approved by ${r.decision.approver}${at(r.decision)}: ${r.decision.reason ?? ''}`
        : '';
      return {
        word: 'restored',
        text: `restored ${where} from ${str(r.backupId) ?? 'a backup'}${kept}${by}`,
        exitCode: STATUS_EXIT.ok,
      };
    }
    case 'tables-restored':
      return {
        word: 'tables-restored',
        text: `restored tables of ${where} from ${str(r.backupId) ?? 'a backup'} into ${str(r.tablesDatabase) ?? 'a copy'}`,
        exitCode: STATUS_EXIT.ok,
      };
    case 'promoted': {
      const p = (r.promoted ?? {}) as { timeline?: number; switchLsn?: string };
      const by = r.decision?.approver ? `, approved by ${r.decision.approver}${at(r.decision)}` : '';
      return {
        word: 'promoted',
        text: `promoted standby ${str(r.standby) ?? '?'} of ${where}: a primary on timeline ${p.timeline ?? '?'}, from ${p.switchLsn ?? '?'}${by}`,
        exitCode: STATUS_EXIT.ok,
      };
    }
    case 'recovered':
    case 'rehearsed': {
      const reached = r.recovery?.reachedLsn ? `, timeline ${r.recovery.timeline}, at ${r.recovery.reachedLsn}` : '';
      const by = r.decision?.approver
        ? `, approved by ${r.decision.approver}${at(r.decision)}: ${r.decision.reason ?? ''}`
        : '';
      const kept = str(r.previousDataDirectory)
        ? `; the previous data directory is kept at ${str(r.previousDataDirectory)}`
        : '';
      return {
        word: r.outcome,
        text: `${r.outcome} ${where} to ${str(r.target) ?? '?'} from base backup ${str(r.backupId) ?? '?'}${reached}${by}${kept}`,
        exitCode: STATUS_EXIT.ok,
      };
    }
  }
  if (r.ok === true && typeof r.tables === 'number') {
    return {
      word: 'verified',
      text: `verified ${where}${str(r.backupId) ? ` ${str(r.backupId)}` : ''}: ${r.tables} tables, ${String(r.rows)} rows restored and compared`,
      exitCode: STATUS_EXIT.ok,
    };
  }
  return { word: 'completed', text: 'completed', exitCode: STATUS_EXIT.ok };
}

/** The lines `pgwarden status` prints and its JSON; pure (the clock is `now`). */
export function statusReport(
  workflowId: string,
  live: LiveStatus,
  now: number,
  extra: { failure?: string; approvalDeadline?: Date; result?: unknown } = {},
): { lines: string[]; json: Record<string, unknown>; exitCode: number } {
  const { failure, approvalDeadline, result } = extra;
  const outcome = outcomeOf(live.status, result, failure);
  const kind = live.workflowType ? kindOfWorkflow(live.workflowType) : undefined;
  const status = statusWord(live.status);
  const running = live.status === 'RUNNING';
  const elapsed = live.startTime
    ? Math.max(0, ((live.closeTime?.getTime() ?? now) - live.startTime.getTime()) / 1000)
    : undefined;
  const memo = live.memo ?? {};
  const labels = ['cluster', 'database']
    .filter((k) => typeof memo[k] === 'string')
    .map((k) => `${k} ${memo[k] as string}`);
  const row = (label: string, text: string) => `  ${label.padEnd(9)} ${text}`;
  const lines = [
    `${workflowId}  ${live.workflowType ?? 'workflow'}${kind ? ` (${kind})` : ''}${labels.length ? `, ${labels.join(', ')}` : ''}`,
  ];

  const started = live.startTime ? `started ${formatLocalTime(live.startTime)}` : '';
  if (running)
    lines.push(row('status', `running for ${formatDuration(elapsed ?? 0)}${started ? ` (${started})` : ''}`));
  else
    lines.push(
      row(
        'status',
        `${status}${elapsed !== undefined ? ` after ${formatDuration(elapsed)}` : ''}${started ? ` (${started}${live.closeTime ? `, closed ${formatLocalTime(live.closeTime)}` : ''})` : ''}`,
      ),
    );
  if (outcome) lines.push(row('outcome', outcome.text));

  const p = live.progress;
  if (p) {
    const since = Date.parse(p.since);
    const inStep =
      running && Number.isFinite(since)
        ? ` for ${formatDuration(Math.max(0, (now - since) / 1000))} (since ${formatLocalTime(new Date(since))})`
        : '';
    if (running) {
      lines.push(row('step', `${p.step}${inStep}`));
      if (p.done.length) lines.push(row('done', p.done.join(', ')));
    } else {
      // A closed run is in no step: what it went through, the last one where it ended.
      lines.push(row('steps', [...p.done, p.step].join(' → ')));
    }
  } else {
    const why = live.queryUnanswered
      ? `no worker answered the progress query within ${QUERY_TIMEOUT_MS / 1000}s`
      : `the progress query failed${live.queryError ? `: ${live.queryError.replace(/\s*\n\s*/g, ' ')}` : ''}`;
    lines.push(row('step', `unknown (${why})`));
  }

  const approval = running && p?.step === 'approve' ? approvalOf(p.detail, workflowId) : undefined;
  if (approval) {
    const until = approvalDeadline
      ? ` until ${formatLocalTime(approvalDeadline)} (${formatDuration(Math.max(0, (approvalDeadline.getTime() - now) / 1000))} left; then it ends, nothing done)`
      : '';
    lines.push(row('waiting', `for approval${until}; nothing live has been touched yet`));
    if (approval.what) lines.push(row('would', approval.what));
    lines.push(row('approve', approval.approve));
    lines.push(row('reject', approval.reject));
  } else if (p?.detail && (running || p.step !== 'approve')) {
    // A closed run's approval detail (what would be done, how to approve) is no longer true.
    lines.push(row('detail', p.detail));
  }

  if (running) {
    for (const a of live.activities ?? []) lines.push(row('activity', activityLine(a, now)));
  }
  if (running) {
    for (const c of live.children ?? [])
      lines.push(row('child', `${c.workflowId} (${c.workflowType}): pgwarden status ${c.workflowId}`));
  }
  if (running && live.queryUnanswered && live.taskQueue)
    lines.push(row('hint', `is a worker running on task queue "${live.taskQueue}"?`));

  const json: Record<string, unknown> = {
    workflowId,
    type: live.workflowType,
    kind,
    status,
    cluster: memo.cluster,
    database: memo.database,
    startTime: live.startTime?.toISOString(),
    closeTime: live.closeTime?.toISOString(),
    seconds: elapsed,
    progress: p ?? null,
    progressUnanswered: !!live.queryUnanswered,
    activities: (live.activities ?? []).map((a) => ({
      ...a,
      heartbeatAt: a.heartbeatAt?.toISOString(),
      startedAt: a.startedAt?.toISOString(),
    })),
    children: live.children ?? [],
    ...(approval
      ? { approval: { ...approval, ...(approvalDeadline ? { deadline: approvalDeadline.toISOString() } : {}) } }
      : {}),
    ...(failure ? { failure } : {}),
    ...(outcome ? { outcome: outcome.word, outcomeText: outcome.text } : {}),
    ...(result && typeof result === 'object' && 'decision' in result
      ? { decision: (result as { decision?: unknown }).decision }
      : {}),
  };
  return { lines, json, exitCode: outcome?.exitCode ?? STATUS_EXIT.ok };
}

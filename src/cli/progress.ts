// `--wait`: the result of a run, and meanwhile its progress. On a terminal, one line rewritten in
// place (step/phase, bar and percentage where a total is known, bytes, rate, elapsed); otherwise a
// plain line each time the step, phase or counters change (logs, pipes, CI). Quiet for `--json`.
// Loaded only by commands that wait (it loads Temporal's client).
import type { WorkflowHandle } from '@temporalio/client';
import { liveStatus, type LiveStatus } from './client.js';
import {
  childLabel,
  mainActivity,
  nextRate,
  plainProgressLine,
  progressKey,
  progressView,
  rateSample,
  ttyProgressLine,
  withChild,
  type RateMeter,
} from './progressView.js';

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export async function waitWithProgress<T>(
  handle: WorkflowHandle,
  quiet: boolean,
  out: ProgressOutput = process.stdout,
): Promise<T> {
  if (quiet) return (await handle.result()) as T;
  const tty = !!out.isTTY;
  let live: LiveStatus | undefined;
  let meter: RateMeter = {};
  let lastKey: string | undefined;
  let polling = false;
  let drawn = false;
  let finished = false;

  const draw = () => {
    if (!live || finished) return;
    const view = progressView(live, meter, Date.now());
    if (tty) {
      out.write(`\r${ttyProgressLine(view, out.columns || 80)}\x1b[K`);
      drawn = true;
    } else {
      const key = progressKey(view);
      if (key !== lastKey) out.write(`  ${plainProgressLine(view)}\n`);
      lastKey = key;
    }
  };
  const poll = async () => {
    if (polling || finished) return;
    polling = true;
    try {
      live = await liveStatus(handle, { queryTimeoutMs: 2000 });
      // Waiting on a child run (a database of "*", a verify): show where the child is.
      const child = live.activities?.length ? undefined : live.children?.[0];
      let run = '';
      if (child) {
        const childLive = await liveStatus(handle.client.getHandle(child.workflowId), { queryTimeoutMs: 2000 }).catch(
          () => undefined,
        );
        if (childLive) [live, run] = [withChild(live, childLive, childLabel(child)), `${child.workflowId}/`];
      }
      meter = nextRate(meter, rateSample(mainActivity(live), Date.now(), run));
      draw();
    } catch (err) {
      // A blip in reaching the server: the next poll tries again; the result decides.
      if (process.env.PGWARDEN_DEBUG)
        process.stderr.write(`pgwarden: progress poll failed: ${(err as Error).message}\n`);
    } finally {
      polling = false;
    }
  };
  const clear = () => {
    if (tty && drawn) out.write('\r\x1b[K');
    drawn = false;
  };
  // Interrupting the wait leaves the run going: say so, and how to follow it.
  const onInterrupt = () => {
    finished = true;
    clear();
    process.stderr.write(
      `pgwarden: stopped waiting; ${handle.workflowId} goes on (see: pgwarden status ${handle.workflowId})\n`,
    );
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  void poll();
  const timer = setInterval(
    () => {
      if (tty) draw(); // the clock moves between polls
      void poll();
    },
    tty ? 1000 : 2000,
  );
  try {
    return (await handle.result()) as T;
  } finally {
    finished = true;
    clearInterval(timer);
    process.off('SIGINT', onInterrupt);
    clear();
  }
}

export type PlanWait =
  | { state: 'planned'; step: string; detail?: string }
  | { state: 'ended'; result: unknown }
  | { state: 'planning'; why: string };

/**
 * `restore` / `pitr` without --wait: waits until the run has left its `plan` step (its plan is
 * proven) or ended. A run that failed throws its error (a bad backup id, a target the WAL does not
 * reach: the command exits non-zero naming it). Gives up, returning `planning`, after `timeoutMs`
 * or when no worker answers the progress query three times in a row.
 */
export async function waitPastPlan(handle: WorkflowHandle, timeoutMs = 5 * 60_000, pollMs = 500): Promise<PlanWait> {
  const deadline = Date.now() + timeoutMs;
  let unanswered = 0;
  for (;;) {
    const live = await liveStatus(handle, { queryTimeoutMs: 3000 });
    if (live.status !== 'RUNNING') return { state: 'ended', result: await handle.result() };
    const step = live.progress?.step;
    if (step && step !== 'plan') return { state: 'planned', step, detail: live.progress?.detail };
    unanswered = live.queryUnanswered ? unanswered + 1 : 0;
    if (unanswered >= 3)
      return {
        state: 'planning',
        why: `no worker answered its progress query (is a worker running on "${live.taskQueue}"?)`,
      };
    if (Date.now() >= deadline)
      return { state: 'planning', why: `still planning after ${Math.round(timeoutMs / 1000)}s` };
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

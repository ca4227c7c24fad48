// Public signals, queries and updates (names are public: operators use them from the UI and CLI).
import {
  condition,
  defineQuery,
  defineSignal,
  getCurrentDetails,
  isCancellation,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  approvalDeadline,
  approvalDetails,
  failureCause,
  FINISHED,
  outcomeDetails,
  stepDetails,
} from '../lib/runDetails.js';

export interface Progress {
  /** The step the workflow is in, as named in docs/procedures.md. */
  step: string;
  /** ISO time the step started. */
  since: string;
  /** Steps finished so far, in order. */
  done: string[];
  detail?: string;
}

/** Who decided, and why: sent with `approve` and `reject`. */
export interface ApprovalInput {
  approver: string;
  reason: string;
}

export interface ApprovalDecision extends ApprovalInput {
  approved: boolean;
  /** ISO time the workflow received the signal. */
  at: string;
}

/** `temporal workflow signal --name approve --input '{"approver":"alice","reason":"INC-42"}'` */
export const approveSignal = defineSignal<[ApprovalInput]>('approve');
/** `temporal workflow signal --name reject --input '{"approver":"alice","reason":"wrong backup"}'` */
export const rejectSignal = defineSignal<[ApprovalInput]>('reject');

/** `temporal workflow query --type progress` */
export const progressQuery = defineQuery<Progress>('progress');

/**
 * Answers the `progress` query for the calling workflow and returns `step(name, detail?)`, which
 * moves it to the next step.
 */
export function trackProgress(first: string): (step: string, detail?: string) => void {
  const progress: Progress = { step: first, since: new Date().toISOString(), done: [] };
  setHandler(progressQuery, () => progress);
  // The UI's "current details" say the step too (no history command: replay is unaffected).
  setCurrentDetails(stepDetails(first, new Date(progress.since)));
  return (step, detail) => {
    // The same step again is news within it (a new detail), not a step done twice.
    if (step === progress.step) {
      progress.detail = detail;
      setCurrentDetails(stepDetails(step, new Date(progress.since), detail));
      return;
    }
    progress.done.push(progress.step);
    Object.assign(progress, { step, since: new Date().toISOString(), detail });
    setCurrentDetails(stepDetails(step, new Date(progress.since), detail));
  };
}

/**
 * `trackProgress` that also times each step: `step(name, detail?)` closes the current one and moves
 * on, `finish()` closes the last; `timings` is the result's `steps`.
 */
export function timedSteps(first: string) {
  const progress = trackProgress(first);
  const timings: { step: string; seconds: number }[] = [];
  let current = { step: first, at: Date.now() };
  const finish = () => void timings.push({ step: current.step, seconds: (Date.now() - current.at) / 1000 });
  const step = (name: string, detail?: string) => {
    finish();
    current = { step: name, at: Date.now() };
    progress(name, detail);
  };
  return { progress, step, finish, timings };
}

/** A finished run's current details: its outcome ("restored", "rejected by alice: wrong backup"). */
export function showOutcome(outcome: string): void {
  setCurrentDetails(outcomeDetails(outcome, new Date()));
}

/** Runs a workflow's body; a failure it did not describe itself shows as "failed: <cause>" (or "cancelled"). */
export async function showingFailure<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    if (!getCurrentDetails().startsWith(FINISHED)) {
      showOutcome(isCancellation(err) ? 'cancelled' : `failed: ${failureCause(err)}`);
    }
    throw err;
  }
}

/**
 * Waits for `approve` or `reject` up to `timeout`. Returns the decision, or undefined when nobody
 * answered in time. Signals without an approver or a reason are ignored: a decision is recorded.
 * With `what` (what approving does), the run's current details say it, the deadline, and how to answer.
 */
export async function waitForApproval(timeout: string | number, what?: string): Promise<ApprovalDecision | undefined> {
  let decision: ApprovalDecision | undefined;
  const decide = (approved: boolean) => (input: ApprovalInput) => {
    if (decision || !input?.approver?.trim() || !input?.reason?.trim()) return;
    decision = { approved, approver: input.approver.trim(), reason: input.reason.trim(), at: new Date().toISOString() };
  };
  setHandler(approveSignal, decide(true));
  setHandler(rejectSignal, decide(false));
  if (what) {
    const since = new Date();
    setCurrentDetails(
      approvalDetails({
        workflowId: workflowInfo().workflowId,
        what,
        since,
        deadline: approvalDeadline(since, timeout as never),
      }),
    );
  }
  // The timer's summary names the wait in the UI's timeline (metadata only: the same timer command).
  await condition(() => decision !== undefined, timeout as never, { summary: 'waiting for approval' });
  return decision;
}

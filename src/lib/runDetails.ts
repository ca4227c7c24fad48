// What a run shows as its "current details" in the Temporal UI and `temporal workflow describe`
// (Temporal markdown): the step it is in, and at `approve` what will happen, until when it waits and
// how to answer. Pure: workflows call it with workflow time.
import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time.js';

/** The JSON an operator pastes into the UI's Send Signal for `approve` or `reject`. */
export const APPROVAL_SIGNAL_INPUT = '{"approver":"NAME","reason":"TEXT"}';

/** "**Step:** stage (since 2026-11-22T14:31:00.000Z)" and the step's detail under it. */
export function stepDetails(step: string, since: Date, detail?: string): string {
  return `**Step:** ${step} (since ${since.toISOString()})${detail ? `\n\n${detail}` : ''}`;
}

/** When a wait of `timeout` (ms, or "24 hours", "10m") that starts at `now` ends. */
export function approvalDeadline(now: Date, timeout: Duration): Date {
  return new Date(now.getTime() + msToNumber(timeout));
}

export interface ApprovalDetailsInput {
  workflowId: string;
  /** What approving does, one sentence. */
  what: string;
  since: Date;
  deadline: Date;
}

/** The details of a run waiting at `approve`: what, until when, and the three ways to answer. */
export function approvalDetails({ workflowId, what, since, deadline }: ApprovalDetailsInput): string {
  return [
    `**Waiting for approval** until ${deadline.toISOString()} (since ${since.toISOString()}); unanswered by then, the run ends and nothing is touched.`,
    `**Approving will:** ${what}`,
    // One paragraph each: the UI's markdown renders no lists.
    `**To answer** (name yourself and a reason, both required):`,
    `- Temporal UI: Send Signal, signal name \`approve\` (or \`reject\`), input \`${APPROVAL_SIGNAL_INPUT}\``,
    `- pgwarden: \`pgwarden approve ${workflowId} --approver NAME --reason TEXT\` (or \`pgwarden reject …\`)`,
    `- temporal: \`temporal workflow signal -w ${workflowId} --name approve --input '${APPROVAL_SIGNAL_INPUT}'\``,
  ].join('\n\n');
}

export const FINISHED = '**Finished:**';

/** The details a finished run keeps: its outcome. */
export function outcomeDetails(outcome: string, at: Date): string {
  return `${FINISHED} ${outcome} (at ${at.toISOString()})`;
}

/** The one line that says why a run failed: an activity's own error rather than "Activity task failed". */
export function failureCause(err: unknown): string {
  return err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
}

/** The innermost message: a child's failure wraps the activity's, which wraps the one that says what happened. */
export function rootMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(err);
}

// promoteStandby: the DR runbook's "promote the standby", approval-gated. plan (the standby in
// recovery, its primary — unreachable is the usual case —, the cluster's WAL archive; waits, bounded,
// until the standby has replayed through the archive's end, and refuses one still behind unless
// allowBehindArchive) → approve (what would be lost, split brain if the primary is up, another
// promotion in the cluster) → promote (a second look: refused if anything the approver was not
// warned of is true now; then pg_promote, until it accepts writes). A rejection or no answer touches
// nothing. One promotion per cluster at a time: the CLI starts it as pgwarden/<cluster>/promote.
import { ApplicationFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common';
import type { Activities } from '../activities/index.js';
import type { Promoted, PromotionWatch } from '../activities/standby/index.js';
import { QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { promotionApprovalText } from '../lib/promotion.js';
import { announceApproval } from './approvalNotice.js';
import { showingFailure, showOutcome, timedSteps, waitForApproval, type ApprovalDecision } from './messages.js';
import { selfLabels } from './selfLabels.js';

export interface PromoteStandbyInput {
  cluster: string;
  /** Its name in clusters.<cluster>.standbys. */
  standby: string;
  /** Ask for approval even when the standby has not replayed through the archive's end (the approval says what is lost). */
  allowBehindArchive?: boolean;
  /** How long plan waits for the standby to replay through the archive's end; default 5 minutes. */
  catchUpTimeout?: string;
  /** How long `approve` waits; default 24 hours. */
  approvalTimeout?: string;
}

export interface PromoteStandbyResult {
  outcome: 'promoted' | 'rejected' | 'timed-out';
  cluster: string;
  standby: string;
  /** What plan saw last: timeline, replay position, the archive's end, how far behind. */
  plan: {
    timeline: number;
    replayLsn: string | null;
    archiveEnd?: string;
    behindBytes: number;
    detail: string;
    warnings: string[];
    notes: string[];
  };
  decision?: ApprovalDecision;
  promoted?: Promoted;
  /** What the operator does next. */
  next: string[];
  steps: { step: string; seconds: number }[];
}

const quick = proxyActivities<Activities>(QUICK_ACTIVITY);
/**
 * The promotion ends when the standby has replayed all it received (hours for one paused for long):
 * a long start-to-close timeout; the heartbeat timeout detects a dead worker.
 */
const promoting = proxyActivities<Activities>({ ...QUICK_ACTIVITY, startToCloseTimeout: '24 hours' });

function bound(name: string, timeout: string): number {
  try {
    return msToNumber(timeout as never);
  } catch {
    throw ApplicationFailure.nonRetryable(`${name} "${timeout}" is not a duration like "5 minutes"`, 'InvalidInput');
  }
}

export async function promoteStandby(input: PromoteStandbyInput): Promise<PromoteStandbyResult> {
  return showingFailure(() => promote(input));
}

async function promote(input: PromoteStandbyInput): Promise<PromoteStandbyResult> {
  const { progress, step, finish, timings } = timedSteps('plan');
  await selfLabels('promote', input);
  const catchUp = bound('catchUpTimeout', input.catchUpTimeout ?? '5 minutes');
  const who = { cluster: input.cluster, standby: input.standby };
  const watch = () =>
    quick.watchPromotionCandidate.executeWithOptions(
      { summary: `plan: is standby ${input.standby} caught up to the archive?` },
      [who],
    );
  const since = Date.now();
  let seen: PromotionWatch = await watch();
  // Replay from the archive (restore_command) or the stream may still be running: wait, bounded.
  // A paused replay that did not move is not waited for: only an operator moves it.
  while (!seen.judged.caughtUp && Date.now() - since < catchUp && !(seen.stalled && seen.look.replayPaused)) {
    progress('plan', `waiting: ${seen.judged.detail}`);
    seen = await watch();
  }
  const { look, judged } = seen;
  const plan = {
    timeline: look.timeline,
    replayLsn: look.replayLsn,
    ...(judged.archiveEnd ? { archiveEnd: judged.archiveEnd } : {}),
    behindBytes: judged.behindBytes,
    detail: judged.detail,
    warnings: judged.warnings,
    notes: judged.notes,
  };
  const base = { cluster: input.cluster, standby: input.standby, plan };
  if (!judged.caughtUp && !input.allowBehindArchive) {
    const message = `standby ${input.standby} is ${judged.detail}; nothing was touched. Let it catch up (resume replay, check its restore_command), or start again with allowBehindArchive to promote it anyway and lose what it lacks`;
    showOutcome(`refused: ${message}`);
    throw ApplicationFailure.nonRetryable(message, 'StandbyBehindArchive');
  }
  const what = promotionApprovalText(input.cluster, look, judged);
  step('approve', `${what} Approve: pgwarden approve ${workflowInfo().workflowId} --approver NAME --reason TEXT`);
  await announceApproval(input.cluster, `A standby promotion waits for approval: ${what}`);
  const decision = await waitForApproval(input.approvalTimeout ?? '24 hours', what);
  if (!decision?.approved) {
    finish();
    showOutcome(
      decision
        ? `rejected by ${decision.approver}: ${decision.reason}; standby ${input.standby} was not touched`
        : `timed out waiting for approval; standby ${input.standby} was not touched`,
    );
    return { ...base, outcome: decision ? 'rejected' : 'timed-out', decision, next: [], steps: timings };
  }
  step('promote', `pg_promote() on ${look.address}`);
  // What the approver read goes to the second look as arguments (not part of the command sequence).
  const promoted = await promoting.promoteToPrimary.executeWithOptions(
    { summary: `promote standby ${input.standby} and wait until it accepts writes` },
    [
      {
        ...who,
        fromTimeline: look.timeline,
        planWarnings: judged.warnings,
        allowBehindArchive: !!input.allowBehindArchive,
      },
    ],
  );
  finish();
  const next = [
    `point the applications at ${look.address}, and make it the cluster's host and port in the config (clusters.${input.cluster}), removing it from standbys`,
    `the old primary must never start as a primary again: rebuild it as a standby of the new one with createStandby (pgwarden standby create) once the config names the new primary`,
    `if its archive_command is pgwarden wal-push for ${input.cluster}, timeline ${promoted.timeline}'s history and WAL go to the same archive: take a base backup of the new primary (pgwarden base-backup) so that PITR on the new timeline starts from it`,
  ];
  showOutcome(
    `standby ${input.standby} of ${input.cluster} is a primary on timeline ${promoted.timeline} (switched at ${promoted.switchLsn ?? '?'})`,
  );
  return { ...base, outcome: 'promoted', decision, promoted, next, steps: timings };
}

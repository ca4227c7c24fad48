// createStandby: the runbook's "initial replication set-up" without a fresh pg_basebackup from the
// primary: plan → stage (the newest base backup beside the standby's data directory) → approve (only
// when that directory holds something) → swap (moved aside, never deleted) → start (primary_conninfo,
// standby.signal, restore_command = pgwarden wal-get) → stream (until both ends say streaming,
// bounded). A failure after the swap rolls back: the directory is as it was found.
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import { msToNumber } from '@temporalio/common';
import type { Activities, StandbyPlan, StandbyStreaming } from '../activities/index.js';
import { LONG_ACTIVITY, QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { announceApproval } from './approvalNotice.js';
import { showingFailure, showOutcome, timedSteps, waitForApproval, type ApprovalDecision } from './messages.js';
import { selfLabels } from './selfLabels.js';

export interface CreateStandbyInput {
  cluster: string;
  /** Its name in clusters.<cluster>.standbys (host, port, dataDirectory, hostQueue). */
  standby: string;
  /** Default: the newest base backup. */
  backupId?: string;
  /** How long `approve` waits when the data directory is not empty; default 24 hours. */
  approvalTimeout?: string;
  /** How long the new standby may take to stream (catching up from the archive first); default 1 hour. */
  streamTimeout?: string;
}

export interface CreateStandbyResult {
  outcome: 'streaming' | 'rejected' | 'timed-out';
  cluster: string;
  standby: string;
  backupId: string;
  dataDirectory: string;
  decision?: ApprovalDecision;
  /** Where the data directory that was there is kept. */
  previousDataDirectory?: string;
  streaming?: StandbyStreaming;
  steps: { step: string; seconds: number }[];
}

const quick = proxyActivities<Activities>(QUICK_ACTIVITY);

/** The stream step's bound; a duration Temporal does not read fails the run at once, naming it. */
function streamBound(timeout: string): number {
  try {
    return msToNumber(timeout as never);
  } catch {
    throw ApplicationFailure.nonRetryable(
      `streamTimeout "${timeout}" is not a duration like "30 minutes"`,
      'InvalidInput',
    );
  }
}

export async function createStandby(input: CreateStandbyInput): Promise<CreateStandbyResult> {
  return showingFailure(() => build(input));
}

async function build(input: CreateStandbyInput): Promise<CreateStandbyResult> {
  const { progress, step, finish, timings } = timedSteps('plan');
  await selfLabels('standby', input);
  const bound = streamBound(input.streamTimeout ?? '1 hour');
  const plan: StandbyPlan = await quick.planStandby.executeWithOptions(
    { summary: `plan: standby ${input.standby} of ${input.cluster}, which base backup` },
    [{ cluster: input.cluster, standby: input.standby, backupId: input.backupId, runId: workflowInfo().runId }],
  );
  // Everything that touches the data directory runs on the standby host's own worker.
  const onHost = { taskQueue: plan.hostQueue, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED };
  const host = proxyActivities<Activities>({ ...LONG_ACTIVITY, ...onHost });
  const hostQuick = proxyActivities<Activities>({ ...QUICK_ACTIVITY, startToCloseTimeout: '15 minutes', ...onHost });
  const base = {
    cluster: input.cluster,
    standby: plan.standby,
    backupId: plan.backupId,
    dataDirectory: plan.dataDirectory,
  };
  let swapped = false;
  let done = false;
  let rolledBack = false;
  try {
    step('stage', `base backup ${plan.backupId} into ${plan.workDirectory}`);
    const staged = await host.stageStandby.executeWithOptions(
      { summary: `stage base backup ${plan.backupId} beside ${plan.dataDirectory}` },
      [plan],
    );
    let decision: ApprovalDecision | undefined;
    if (staged.dataDirectory === 'present') {
      const what = `${plan.dataDirectory} is not empty: keep it as ${plan.asideDirectory} and make it standby ${plan.standby} of ${input.cluster} from base backup ${plan.backupId}.`;
      step('approve', `${what} Approve: pgwarden approve ${workflowInfo().workflowId} --approver NAME --reason TEXT`);
      await announceApproval(input.cluster, `A standby build waits for approval: ${what}`);
      decision = await waitForApproval(input.approvalTimeout ?? '24 hours', what);
      if (!decision?.approved) {
        finish();
        showOutcome(
          decision
            ? `rejected by ${decision.approver}: ${decision.reason}; ${plan.dataDirectory} was not touched`
            : `timed out waiting for approval; ${plan.dataDirectory} was not touched`,
        );
        return { ...base, outcome: decision ? 'rejected' : 'timed-out', decision, steps: timings };
      }
    }
    step('swap', `${plan.dataDirectory}${staged.dataDirectory === 'present' ? ` → ${plan.asideDirectory}` : ''}`);
    swapped = true; // from here on, a failure rolls back (the swap itself is idempotent)
    const swap = await hostQuick.swapStandbyDirectory.executeWithOptions(
      { summary: `lay base backup ${plan.backupId} into ${plan.dataDirectory}` },
      [plan],
    );
    step('start', `port ${plan.port}`);
    await hostQuick.startStandby.executeWithOptions(
      { summary: `configure streaming and restore_command, start standby ${plan.standby}` },
      [plan],
    );
    step('stream');
    const since = Date.now();
    let seen = await host.waitForStreaming.executeWithOptions({ summary: 'wait until it streams' }, [plan]);
    while (!seen.streaming) {
      if (Date.now() - since > bound)
        throw ApplicationFailure.nonRetryable(
          `standby ${plan.standby} is not streaming after ${input.streamTimeout ?? '1 hour'}: ${seen.detail}`,
          'StandbyNotStreaming',
        );
      progress('stream', seen.detail);
      seen = await host.waitForStreaming.executeWithOptions({ summary: 'wait until it streams' }, [plan]);
    }
    finish();
    done = true;
    showOutcome(`standby ${plan.standby} of ${input.cluster} streams, from base backup ${plan.backupId}`);
    return {
      ...base,
      outcome: 'streaming',
      decision,
      previousDataDirectory: swap.movedAside ? plan.asideDirectory : undefined,
      streaming: seen,
      steps: timings,
    };
  } catch (err) {
    const reason = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    if (!swapped) {
      showOutcome(`${isCancellation(err) ? 'cancelled' : `failed: ${reason}`}; ${plan.dataDirectory} was not touched`);
      throw err;
    }
    progress('rollback', reason);
    const back = await CancellationScope.nonCancellable(() =>
      hostQuick.rollbackStandby.executeWithOptions({ summary: `roll back ${plan.dataDirectory}` }, [
        { ...plan, reason },
      ]),
    );
    rolledBack = true;
    showOutcome(`failed and rolled back: ${reason}`);
    throw ApplicationFailure.create({
      type: 'StandbyFailed',
      message: `standby build failed and was rolled back: ${reason}. ${back}`,
      nonRetryable: true,
    });
  } finally {
    // The work directory goes; after the swap only once rolled back (its markers say how the directory was found).
    if (done || !swapped || rolledBack)
      await CancellationScope.nonCancellable(() => hostQuick.cleanupStandby(plan)).catch(() => undefined);
  }
}

// Tells the operator's channels that a run waits at `approve` (not a workflow: a step shared by
// pointInTimeRecovery and restoreDatabase). Best effort: a dead webhook never blocks a restore.
import { log, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { HEARTBEAT_TIMEOUT } from '../lib/activityOptions.js';

const { notifyApproval } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: { initialInterval: '5s', maximumAttempts: 3 },
});

export async function announceApproval(cluster: string, what: string): Promise<void> {
  // Runs that reached `approve` before this step existed replay without it.
  if (!patched('notify-approval')) return;
  try {
    await notifyApproval.executeWithOptions(
      { summary: "tell the operators' channels that this run waits for approval" },
      [{ cluster, workflowId: workflowInfo().workflowId, what }],
    );
  } catch (err) {
    log.warn('approval notification failed; the run waits for approval all the same', {
      error: (err as Error).message,
    });
  }
}

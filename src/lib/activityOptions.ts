// Activity timeouts and retries shared by the workflows (plain data: safe in workflow code).
import { ActivityCancellationType, type ActivityOptions } from '@temporalio/common';

/** Short steps (checks, catalog queries, manifest writes): bad input fails at once, blips retry. */
export const QUICK_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '5s', maximumAttempts: 3 },
};

/**
 * Long streaming steps (dump, restore, checksums of big files): hours are allowed; the 30 s
 * heartbeat timeout, not the start-to-close one, detects a dead worker. Cancellation waits for the
 * activity to clean up its partial output.
 */
export const LONG_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '30 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '10s', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 5 },
};

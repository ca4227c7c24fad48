// Activity timeouts and retries shared by the workflows (plain data: safe in workflow code).
import { ActivityCancellationType, type ActivityOptions } from '@temporalio/common';

/**
 * How soon a dead worker is noticed. Every activity heartbeats every few seconds while it runs (the
 * worker's autoHeartbeat interceptor, besides the activities' own progress heartbeats), so a step
 * whose worker died is retried on another one after this plus the retry interval, not after its
 * start-to-close timeout. (Timeouts are not part of a workflow's command sequence: running
 * workflows replay unchanged; the SDK matches a scheduled activity by its type and id.)
 */
export const HEARTBEAT_TIMEOUT = '20 seconds';

/** Short steps (checks, catalog queries, manifest writes, hooks): bad input fails at once, blips retry. */
export const QUICK_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: { initialInterval: '5s', maximumAttempts: 3 },
};

/**
 * Long streaming steps (dump, restore, checksums of big files): hours are allowed; the heartbeat
 * timeout, not the start-to-close one, detects a dead worker. Cancellation waits for the
 * activity to clean up its partial output.
 */
export const LONG_ACTIVITY: ActivityOptions = {
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '10s', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 5 },
};

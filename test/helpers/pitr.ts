// Following a pointInTimeRecovery run from a test: wait until its `progress` query names a step.
import type { WorkflowHandle } from '@temporalio/client';
import type { Config } from '../../src/config/index.js';
import type { Progress } from '../../src/workflows/messages.js';

export async function waitForStep(handle: WorkflowHandle, step: string, timeoutMs = 120_000): Promise<Progress> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await handle.query<Progress>('progress');
    if (p.step === step) return p;
    if (Date.now() > deadline) throw new Error(`never reached ${step} (at ${p.step})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The steps of an in-place pointInTimeRecovery, in order (`pre-replay`: the replay before the approval). */
export const IN_PLACE_STEPS = ['plan', 'stage', 'pre-replay', 'approve', 'stop', 'swap', 'recover', 'verify'];

/** `config` with its worker on queues of its own (`queue`, and `pgwarden@<queue>` for the host): a worker process a test may kill. */
export function ownQueues(config: Config, queue: string): Config {
  const own = structuredClone(config);
  own.temporal.taskQueue = queue;
  own.worker.host = queue;
  own.clusters.main!.hostQueue = `pgwarden@${queue}`;
  return own;
}

/** The attempt each run of activity `type` ended on, from the run's history. */
export async function activityAttempts(handle: WorkflowHandle, type: string): Promise<number[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = new Set(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type)
      .map((e) => String(e.eventId)),
  );
  return events
    .filter((e) => scheduled.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId)))
    .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 0);
}

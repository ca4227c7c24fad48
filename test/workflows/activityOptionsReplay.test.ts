// Activity timeouts are not part of a workflow's command sequence: a history recorded while the
// activity options had no heartbeat timeout (before every activity heartbeated) replays on today's
// code, while a history whose activities differ does not (the replay really compares).
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startStubWorker, testEnvironment, uniqueQueue, workflowBundle } from '../helpers/temporal.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await testEnvironment();
});
afterAll(async () => {
  await env?.teardown();
});

it('a history recorded with the old activity timeouts replays; one with another activity does not', async () => {
  const queue = uniqueQueue('replay');
  const worker = await startStubWorker(env, queue, {
    checkHealth: async () => ({ snapshot: { at: '2026-11-22T02:00:00Z' }, alerts: [] }),
    notifyHealth: async () => ({ sent: [] }),
  });
  let history;
  try {
    const handle = await env.client.workflow.start('healthCheck', {
      taskQueue: queue,
      workflowId: `${queue}/health`,
      args: [{ cluster: 'main' }],
    });
    await handle.result();
    history = await handle.fetchHistory();
  } finally {
    await worker.stop();
  }
  const scheduled = history.events!.map((e) => e.activityTaskScheduledEventAttributes).filter((a) => !!a);
  expect(scheduled.map((a) => a.activityType?.name)).toEqual(['checkHealth', 'notifyHealth']);
  expect(scheduled.every((a) => Number(a.heartbeatTimeout?.seconds) === 20)).toBe(true);

  // As the earlier code recorded them: no heartbeat timeout, other start-to-close.
  const old = structuredClone(history);
  for (const e of old.events!) {
    const a = e.activityTaskScheduledEventAttributes;
    if (a) Object.assign(a, { heartbeatTimeout: null, startToCloseTimeout: { seconds: 900 } });
  }
  await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, old, `${queue}/old-options`);

  const other = structuredClone(history);
  other.events!.find(
    (e) => e.activityTaskScheduledEventAttributes,
  )!.activityTaskScheduledEventAttributes!.activityType = { name: 'somethingElse' };
  await expect(
    Worker.runReplayHistory({ workflowBundle: workflowBundle() }, other, `${queue}/other`),
  ).rejects.toBeInstanceOf(DeterminismViolationError);
});

// createStandby's orchestration with stubbed activities on the real dev server: an empty target is
// built without asking; a non-empty one waits for approval touching nothing, and a rejection leaves
// it so; a standby that fails after the swap is rolled back. With PGWARDEN_RECORD_HISTORIES=1 each
// run's history is recorded for the replay test.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { StandbyPlan } from '../../src/activities/index.js';
import { nonRetryable } from '../../src/lib/errors.js';
import { ErrorType } from '../../src/lib/errorTypes.js';
import type { CreateStandbyResult } from '../../src/workflows/createStandby.js';
import { recordHistory } from '../helpers/histories.js';
import { waitForStep, withStubRun, type StubRun } from '../helpers/stubRuns.js';
import { testEnvironment } from '../helpers/temporal.js';
import { runFailure } from '../helpers/workflowRuns.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await testEnvironment();
});
afterAll(async () => {
  await env?.teardown();
});

const planOf = (run: StubRun): StandbyPlan => ({
  cluster: 'main',
  standby: 'replica1',
  backupId: '20261122T030000Z',
  dataDirectory: '/var/lib/postgresql/17/replica1',
  workDirectory: '/var/lib/postgresql/17/replica1.pgwarden-standby-1',
  asideDirectory: '/var/lib/postgresql/17/replica1.pre-standby-1',
  port: 5433,
  hostQueue: run.hostQueue,
});

function stubs(run: () => StubRun, found: 'empty' | 'present', overrides: Record<string, () => unknown> = {}) {
  let looks = 0;
  return {
    planStandby: async () => planOf(run()),
    stageStandby: async () => ({ bytes: 10, dataDirectory: found }),
    notifyApproval: async () => ({ sent: [], skipped: [] }),
    swapStandbyDirectory: async () => ({ movedAside: found === 'present' }),
    startStandby: async () => ({ port: 5433, log: '/var/lib/postgresql/17/replica1.log' }),
    // The first look finds it replaying from the archive: the workflow shows it and asks again.
    waitForStreaming: async () =>
      ++looks > 1
        ? {
            streaming: true,
            detail: 'streaming from the primary',
            receiverStatus: 'streaming',
            senderState: 'streaming',
          }
        : { streaming: false, detail: 'replaying from the archive, at 0/3000028' },
    rollbackStandby: async () => '/var/lib/postgresql/17/replica1 is back as it was',
    cleanupStandby: async () => undefined,
    ...overrides,
  };
}

const start = (run: StubRun, id: string) =>
  env.client.workflow.start('createStandby', {
    taskQueue: run.queue,
    workflowId: `${run.queue}/${id}`,
    args: [{ cluster: 'main', standby: 'replica1' }],
  });

const hostSteps = ['swapStandbyDirectory@host', 'startStandby@host', 'waitForStreaming@host', 'waitForStreaming@host'];

it('an empty target: built without asking, on the standby host, until it streams', async () => {
  let current!: StubRun;
  const { result, calls } = await withStubRun(
    env,
    'wf-standby',
    stubs(() => current, 'empty'),
    async (run) => {
      current = run;
      const handle = await start(run, 'empty');
      const result = (await handle.result()) as CreateStandbyResult;
      await recordHistory(handle, 'createStandby-empty');
      return { result, calls: run.calls };
    },
  );
  expect(calls).toEqual(['planStandby', 'stageStandby@host', ...hostSteps, 'cleanupStandby@host']);
  expect(result).toMatchObject({ outcome: 'streaming', backupId: '20261122T030000Z' });
  expect(result.previousDataDirectory).toBeUndefined();
  expect(result.steps.map((s) => s.step)).toEqual(['plan', 'stage', 'swap', 'start', 'stream']);
});

it('a directory that is not empty waits for approval touching nothing; approved, it is kept aside', async () => {
  let current!: StubRun;
  const { result, atApproval, calls } = await withStubRun(
    env,
    'wf-standby',
    stubs(() => current, 'present'),
    async (run) => {
      current = run;
      const handle = await start(run, 'approved');
      await waitForStep(handle, 'approve');
      const atApproval = [...run.calls];
      await handle.signal('approve', { approver: 'alice', reason: 'rebuild replica1' });
      const result = (await handle.result()) as CreateStandbyResult;
      await recordHistory(handle, 'createStandby-approved');
      return { result, atApproval, calls: run.calls };
    },
  );
  expect(atApproval).toEqual(['planStandby', 'stageStandby@host', 'notifyApproval']);
  expect(calls).toEqual([...atApproval, ...hostSteps, 'cleanupStandby@host']);
  expect(result).toMatchObject({
    outcome: 'streaming',
    previousDataDirectory: '/var/lib/postgresql/17/replica1.pre-standby-1',
    decision: { approved: true, approver: 'alice' },
  });
});

it('rejected: nothing swapped, the staged copy removed', async () => {
  let current!: StubRun;
  const { result, calls } = await withStubRun(
    env,
    'wf-standby',
    stubs(() => current, 'present'),
    async (run) => {
      current = run;
      const handle = await start(run, 'rejected');
      await waitForStep(handle, 'approve');
      await handle.signal('reject', { approver: 'bob', reason: 'replica1 still serves reads' });
      const result = (await handle.result()) as CreateStandbyResult;
      await recordHistory(handle, 'createStandby-rejected');
      return { result, calls: run.calls };
    },
  );
  expect(calls).toEqual(['planStandby', 'stageStandby@host', 'notifyApproval', 'cleanupStandby@host']);
  expect(result).toMatchObject({ outcome: 'rejected', decision: { approved: false, approver: 'bob' } });
});

it('a standby that stops after the swap is rolled back, and the run says so', async () => {
  let current!: StubRun;
  const failing = {
    waitForStreaming: async () => {
      throw nonRetryable(ErrorType.RecoveryFailed, 'the standby stopped: FATAL: database system identifier differs');
    },
  };
  const { failure, calls } = await withStubRun(
    env,
    'wf-standby',
    stubs(() => current, 'empty', failing),
    async (run) => {
      current = run;
      const handle = await start(run, 'rolled-back');
      const failure = await runFailure(handle);
      await recordHistory(handle, 'createStandby-rolled-back');
      return { failure, calls: run.calls };
    },
  );
  expect(calls).toEqual([
    'planStandby',
    'stageStandby@host',
    'swapStandbyDirectory@host',
    'startStandby@host',
    'waitForStreaming@host',
    'rollbackStandby@host',
    'cleanupStandby@host',
  ]);
  expect(failure.message).toMatch(/rolled back: .*identifier differs.*back as it was/);
});

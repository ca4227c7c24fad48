// pointInTimeRecovery's orchestration with stubbed activities on the real dev server: nothing on
// the host is touched before approval, then the host steps run in order on the host's queue; a
// rejection or no answer touches nothing; a failed recover rolls back; a cancelled rehearsal
// cleans up its scratch copy. With PGWARDEN_RECORD_HISTORIES=1 each run's history is recorded.
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RecoveryMode, RecoveryPlan } from '../../src/activities/index.js';
import { nonRetryable } from '../../src/lib/errors.js';
import { ErrorType } from '../../src/lib/errorTypes.js';
import type { RecoveryTarget } from '../../src/lib/recovery.js';
import type { Progress } from '../../src/workflows/messages.js';
import type { PointInTimeRecoveryResult } from '../../src/workflows/pointInTimeRecovery.js';
import { recordHistory } from '../helpers/histories.js';
import { IN_PLACE_STEPS } from '../helpers/pitr.js';
import { hangingStub, waitForStep, withStubRun, type StubRun } from '../helpers/stubRuns.js';
import { testEnvironment } from '../helpers/temporal.js';
import { runFailure, scheduledActivities } from '../helpers/workflowRuns.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await testEnvironment();
});
afterAll(async () => {
  await env?.teardown();
});

const approver = { approver: 'alice', reason: 'INC-42' };

function planOf(run: StubRun, mode: RecoveryMode, target: RecoveryTarget): RecoveryPlan {
  return {
    cluster: 'main',
    mode,
    target,
    targetDescription: 'latest' in target ? 'the last committed transaction' : JSON.stringify(target),
    backupId: '20261122T030000Z',
    backupStopLsn: '0/3000100',
    targetTimeline: 1,
    walFiles: ['000000010000000000000003', '000000010000000000000004'],
    dataDirectory: '/var/lib/postgresql/17/main',
    workDirectory: '/var/lib/postgresql/17/main.pgwarden',
    asideDirectory: '/var/lib/postgresql/17/main.before-pitr',
    hostQueue: run.hostQueue,
  };
}

/** The replay before the approval: 48 MB at 16 MB/s, 16 MB left from the restartpoint. */
const preReplayed = {
  standby: false,
  redoStart: '0/2000028',
  reachedLsn: '0/5000028',
  restartLsn: '0/4000028',
  stoppedAt: 'recovery stopping before commit of transaction 812, time 2026-11-22 04:00:01+00',
  replayedBytes: 48 * 1024 * 1024,
  remainingBytes: 16 * 1024 * 1024,
  seconds: 4,
  bytesPerSecond: 16 * 1024 * 1024,
  startSeconds: 1,
  stopSeconds: 1,
};

/** Stubs of every activity pointInTimeRecovery proxies, answering as a healthy host does. */
function stubs(plan: () => RecoveryPlan, overrides: Record<string, (...args: never[]) => unknown> = {}) {
  let archiveAsks = 0;
  return {
    fetchRecoveryFromOffsite: async () => ({ files: 0, bytes: 0 }),
    planRecovery: async () => plan(),
    stageRecovery: async () => ({ bytes: 10, walFiles: 2, dataDirectory: 'present' }),
    stageBaseBackup: async () => ({ bytes: 8 }),
    stageWal: async () => ({ bytes: 2, walFiles: 2 }),
    abortWalStaging: async () => undefined,
    notifyApproval: async () => ({ sent: [], skipped: [] }),
    // The first ask finds the switched segment not archived yet: the workflow asks again.
    archiveCurrentWal: async () => ({
      since: '2026-11-22T03:00:00Z',
      segment: '000000010000000000000004',
      detail: 'archived',
      done: ++archiveAsks > 1,
    }),
    stopCluster: async () => 'stopped cluster main',
    gatherUnarchivedWal: async () => ({
      fromArchive: ['000000010000000000000004'],
      fromPgWal: ['000000010000000000000005'],
      archived: [],
    }),
    swapDataDirectory: async () => ({ movedAside: true }),
    preReplay: async () => preReplayed,
    recover: async () => ({ timeline: 2, reachedLsn: '0/5000028', port: 5433, recoverSeconds: 1 }),
    verifyRecovery: async () => ({ checks: [] }),
    cleanupRecovery: async () => ({}),
    rollbackRecovery: async () => 'main runs again on /var/lib/postgresql/17/main',
    ...overrides,
  };
}

const start = (run: StubRun, id: string, target: RecoveryTarget, extra: object = {}) =>
  env.client.workflow.start('pointInTimeRecovery', {
    taskQueue: run.queue,
    workflowId: `${run.queue}/${id}`,
    args: [{ cluster: 'main', target, ...extra }],
  });

const beforeApproval = [
  'fetchRecoveryFromOffsite',
  'planRecovery',
  'stageRecovery@host',
  'preReplay@host',
  'notifyApproval',
];

it('in place: stages and replays the staged copy, waits for approval touching nothing, then stop → swap → recover → verify on the host, in order', async () => {
  const target: RecoveryTarget = { latest: true };
  let plan!: RecoveryPlan;
  let waiting!: Progress;
  const { result, calls, atApproval } = await withStubRun(
    env,
    'wf-pitr',
    stubs(() => plan),
    async (run) => {
      plan = planOf(run, 'in-place', target);
      const handle = await start(run, 'approved', target);
      await waitForStep(handle, 'approve');
      waiting = await handle.query<Progress>('progress');
      const atApproval = [...run.calls];
      await handle.signal('approve', approver);
      const result = (await handle.result()) as PointInTimeRecoveryResult;
      await recordHistory(handle, 'pointInTimeRecovery-in-place-latest-approved');
      return { result, calls: run.calls, atApproval };
    },
  );
  expect(atApproval).toEqual(beforeApproval);
  expect(calls).toEqual([
    ...beforeApproval,
    'archiveCurrentWal',
    'archiveCurrentWal',
    'stopCluster@host',
    'gatherUnarchivedWal@host',
    'swapDataDirectory@host',
    'recover@host',
    'verifyRecovery@host',
    'cleanupRecovery@host',
  ]);
  expect(result).toMatchObject({
    outcome: 'recovered',
    mode: 'in-place',
    backupId: '20261122T030000Z',
    previousDataDirectory: plan.asideDirectory,
    decision: { approved: true, ...approver },
  });
  expect(result.steps.map((s) => s.step)).toEqual(IN_PLACE_STEPS);
  expect(result.preReplay).toEqual(preReplayed);
  // The approval says what was replayed already and how long the cluster will be down:
  // stop 1 s + 16 MB at 16 MB/s + start 1 s + promotion 1 s.
  expect(waiting.detail).toContain('Replayed already, while main kept running: 48.0 MB of WAL from 0/2000028');
  expect(waiting.detail).toContain('main will be down about 3 s after the approval');
});

/** An in-place run answered with `reject`, or not at all (a short approval timeout). */
async function unapproved(answer: 'reject' | 'none', history: string) {
  const target: RecoveryTarget = { time: '2026-11-22T04:00:00Z' };
  let plan!: RecoveryPlan;
  return withStubRun(
    env,
    'wf-pitr',
    stubs(() => plan),
    async (run) => {
      plan = planOf(run, 'in-place', target);
      const handle = await start(run, answer, target, answer === 'none' ? { approvalTimeout: '2 seconds' } : {});
      await waitForStep(handle, 'approve');
      if (answer === 'reject') await handle.signal('reject', approver);
      const result = (await handle.result()) as PointInTimeRecoveryResult;
      await recordHistory(handle, history);
      return { result, calls: run.calls };
    },
  );
}

it('in place, rejected: ends "rejected" and touches nothing on the host (only the staged copy is removed)', async () => {
  const { result, calls } = await unapproved('reject', 'pointInTimeRecovery-in-place-rejected');
  expect(calls).toEqual([...beforeApproval, 'cleanupRecovery@host']);
  expect(result).toMatchObject({ outcome: 'rejected', decision: { approved: false, ...approver } });
  expect(result.steps.map((s) => s.step)).toEqual(['plan', 'stage', 'pre-replay', 'approve']);
});

it('in place, nobody answers: ends "timed-out" at the approval timeout and touches nothing on the host', async () => {
  const { result, calls } = await unapproved('none', 'pointInTimeRecovery-in-place-timed-out');
  expect(calls).toEqual([...beforeApproval, 'cleanupRecovery@host']);
  expect(result).toMatchObject({ outcome: 'timed-out' });
  expect(result.decision).toBeUndefined();
});

it('in place, recover fails: the moved-aside data directory is started again and the run fails naming the cause', async () => {
  const target: RecoveryTarget = { time: '2026-11-22T04:00:00Z' };
  const cause =
    'PostgreSQL stopped during recovery: FATAL: requested recovery stop point is before consistent recovery point';
  let plan!: RecoveryPlan;
  const overrides = {
    recover: async () => {
      throw nonRetryable(ErrorType.RecoveryFailed, cause);
    },
  };
  const { failure, calls, rollback } = await withStubRun(
    env,
    'wf-pitr',
    stubs(() => plan, overrides),
    async (run) => {
      plan = planOf(run, 'in-place', target);
      const handle = await start(run, 'rollback', target);
      await waitForStep(handle, 'approve');
      await handle.signal('approve', approver);
      const failure = await runFailure(handle);
      await recordHistory(handle, 'pointInTimeRecovery-in-place-rolled-back');
      return { failure, calls: run.calls, rollback: run.args.rollbackRecovery };
    },
  );
  // No cleanup after a rollback: the work directory's logs are kept for the post-mortem.
  expect(calls).toEqual([
    ...beforeApproval,
    'stopCluster@host',
    'swapDataDirectory@host',
    'recover@host',
    'rollbackRecovery@host',
  ]);
  expect(rollback).toMatchObject({ dataDirectory: plan.dataDirectory, reason: cause });
  expect(failure).toEqual({
    type: 'RecoveryFailed',
    message: `recovery failed and was rolled back: ${cause}. main runs again on /var/lib/postgresql/17/main`,
  });
});

it('rehearsal: asks nobody, waits while plan waits for archiving, stages beside the live cluster, recovers and verifies the scratch copy', async () => {
  const target: RecoveryTarget = { name: 'before-migration' };
  let plan!: RecoveryPlan;
  let asks = 0;
  const pendingOnce = () =>
    ++asks === 1
      ? {
          ...plan,
          pending: { since: '2026-11-22T03:00:00Z', detail: 'waiting for 000000010000000000000004 to be archived' },
        }
      : plan;
  const { result, calls, scheduled } = await withStubRun(env, 'wf-pitr', stubs(pendingOnce), async (run) => {
    plan = planOf(run, 'rehearsal', target);
    const handle = await start(run, 'rehearsal', target, { mode: 'rehearsal' });
    const result = (await handle.result()) as PointInTimeRecoveryResult;
    await recordHistory(handle, 'pointInTimeRecovery-rehearsal');
    return { result, calls: run.calls, scheduled: await scheduledActivities(handle) };
  });
  const staged = ['stageBaseBackup@host', 'stageWal@host'];
  expect(calls.slice(0, 3)).toEqual(['fetchRecoveryFromOffsite', 'planRecovery', 'planRecovery']);
  expect(calls.slice(3, 5).sort()).toEqual(staged); // side by side: either may start first
  expect(calls.slice(5)).toEqual(['recover@host', 'verifyRecovery@host', 'cleanupRecovery@host']);
  expect(scheduled).toEqual([
    'fetchRecoveryFromOffsite',
    'planRecovery',
    'planRecovery',
    'stageWal',
    'stageBaseBackup',
    'recover',
    'verifyRecovery',
    'cleanupRecovery',
  ]);
  expect(result).toMatchObject({ outcome: 'rehearsed', mode: 'rehearsal', recovery: { port: 5433 } });
  expect(result.previousDataDirectory).toBeUndefined();
  expect(result.steps.map((s) => s.step)).toEqual(['plan', 'stage', 'recover', 'verify']);
});

it('rehearsal, cancelled while staging: both staging steps are cancelled, WAL staging is aborted and the scratch copy removed', async () => {
  const target: RecoveryTarget = { name: 'before-migration' };
  const base = hangingStub();
  const wal = hangingStub();
  let plan!: RecoveryPlan;
  const { err, calls, cleanup } = await withStubRun(
    env,
    'wf-pitr',
    stubs(() => plan, { stageBaseBackup: base.stub, stageWal: wal.stub }),
    async (run) => {
      plan = planOf(run, 'rehearsal', target);
      const handle = await start(run, 'rehearsal-cancel', target, { mode: 'rehearsal' });
      await Promise.all([base.started, wal.started]);
      await handle.cancel();
      const err = await handle.result().catch((e: unknown) => e);
      await Promise.all([base.cancelled, wal.cancelled]);
      await recordHistory(handle, 'pointInTimeRecovery-rehearsal-cancelled');
      return { err, calls: [...run.calls], cleanup: run.args.cleanupRecovery };
    },
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  expect(calls.slice(0, 2)).toEqual(['fetchRecoveryFromOffsite', 'planRecovery']);
  expect(calls.slice(2, 4).sort()).toEqual(['stageBaseBackup@host', 'stageWal@host']);
  expect(calls.slice(4).sort()).toEqual(['abortWalStaging@host', 'cleanupRecovery@host']);
  // The whole work directory goes: a cancelled drill keeps no log.
  expect(cleanup).toMatchObject({ workDirectory: plan.workDirectory });
  expect(cleanup).not.toHaveProperty('keepLog');
});

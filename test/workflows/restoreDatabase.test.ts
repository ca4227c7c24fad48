// restoreDatabase's orchestration with stubbed activities on the real dev server: nothing is
// touched before approval; approved, it restores beside the live database, verifies, then swaps
// names; a failure before the swap drops the half-made copy and keeps the live database, one after
// it leaves the restored database in place; both start the applications again.
// With PGWARDEN_RECORD_HISTORIES=1 each run's history is recorded.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { VerifyPlan } from '../../src/activities/index.js';
import { nonRetryable } from '../../src/lib/errors.js';
import { ErrorType } from '../../src/lib/errorTypes.js';
import type { RestoreDatabaseResult } from '../../src/workflows/restoreDatabase.js';
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

const backupId = '20261122T020000Z';
const approver = { approver: 'alice', reason: 'INC-42' };
type Stub = (...args: never[]) => unknown;

/** Stubs of every activity restoreDatabase proxies, answering as a healthy cluster does. */
const stubs = (overrides: Record<string, Stub> = {}): Record<string, Stub> => ({
  fetchLogicalFromOffsite: async () => ({ files: 0, bytes: 0 }),
  planVerify: async (input: { cluster: string; database: string }): Promise<VerifyPlan> => ({
    ...input,
    backupId,
    restoreCluster: input.cluster,
    scratchDatabase: 'pgwarden_verify_x',
  }),
  checkIntegrity: async () => ({ bytes: 10 }),
  notifyApproval: async () => ({ sent: [], skipped: [] }),
  runRestoreHook: async () => 'hook ran',
  restoreIntoScratch: async () => ({ restoreSeconds: 2, databaseOid: 16400 }),
  compareWithManifest: async () => ({ tables: 3, rows: 30, checks: [], privileges: '12 objects compared' }),
  swapDatabases: async (plan: { preRestoreDatabase: string }) => ({ previousDatabase: plan.preRestoreDatabase }),
  analyzeDatabase: async () => undefined,
  dropScratchDatabase: async () => undefined,
  ...overrides,
});

/** Hooks are logged with their name: which one ran matters. */
const hookLabel = (name: string, arg: unknown) =>
  name === 'runRestoreHook' ? `${name}:${(arg as { hook: string }).hook}` : name;

const start = (run: StubRun, id: string, extra: object = {}) =>
  env.client.workflow.start('restoreDatabase', {
    taskQueue: run.queue,
    workflowId: `${run.queue}/${id}`,
    args: [{ cluster: 'main', database: 'app', ...extra }],
  });

const beforeApproval = ['fetchLogicalFromOffsite', 'planVerify', 'checkIntegrity', 'notifyApproval'];
const restored = [
  'runRestoreHook:preRestore',
  'restoreIntoScratch',
  'compareWithManifest',
  'swapDatabases',
  'analyzeDatabase',
  'runRestoreHook:postRestore',
];

/** Starts a restore, answers at `approve` (or not), and returns its result or failure with the calls the stubs saw. */
async function restoreRun(
  id: string,
  answer: 'approve' | 'reject' | 'none',
  overrides: Record<string, Stub> = {},
  extra: object = {},
) {
  return withStubRun(
    env,
    'wf-restore',
    stubs(overrides),
    async (run) => {
      const handle = await start(run, id, answer === 'none' ? { approvalTimeout: '2 seconds', ...extra } : extra);
      await waitForStep(handle, 'approve');
      const atApproval = [...run.calls];
      if (answer !== 'none') await handle.signal(answer, approver);
      const outcome: { result?: RestoreDatabaseResult; failure?: { type?: string; message: string } } = await handle
        .result()
        .then(
          (result) => ({ result: result as RestoreDatabaseResult }),
          async () => ({ failure: await runFailure(handle) }),
        );
      await recordHistory(handle, `restoreDatabase-${id}`);
      return { ...outcome, atApproval, calls: run.calls, args: run.args };
    },
    hookLabel,
  );
}

it('approved: restores beside the live database, verifies, swaps names, analyzes, starts the applications', async () => {
  const { result, calls, atApproval } = await restoreRun('approved', 'approve');
  expect(atApproval).toEqual(beforeApproval);
  expect(calls).toEqual([...beforeApproval, ...restored]);
  expect(result).toMatchObject({
    outcome: 'restored',
    backupId,
    decision: { approved: true, ...approver },
    restoreSeconds: 2,
    privileges: '12 objects compared',
  });
  expect(result?.previousDatabase).toMatch(/^app_pre_restore_20261122t020000z_/);
});

it('rejected: ends "rejected" and touches nothing', async () => {
  const { result, calls } = await restoreRun('rejected', 'reject');
  expect(calls).toEqual(beforeApproval);
  expect(result).toMatchObject({ outcome: 'rejected', decision: { approved: false, ...approver } });
});

it('nobody answers: ends "timed-out" at the approval timeout and touches nothing', async () => {
  const { result, calls } = await restoreRun('timed-out', 'none');
  expect(calls).toEqual(beforeApproval);
  expect(result).toMatchObject({ outcome: 'timed-out' });
});

it('fails after approval, before the swap: the half-made copy is dropped, the live database kept, the applications started again', async () => {
  const compareWithManifest = async () => {
    throw nonRetryable(ErrorType.RestoreFailed, 'table public.orders: 29 rows restored, the manifest says 30');
  };
  const { failure, calls, args } = await restoreRun('failed-before-swap', 'approve', { compareWithManifest });
  expect(calls).toEqual([
    ...beforeApproval,
    'runRestoreHook:preRestore',
    'restoreIntoScratch',
    'compareWithManifest',
    'dropScratchDatabase',
    'runRestoreHook:postRestore',
  ]);
  expect(args.dropScratchDatabase).toMatchObject({
    scratchDatabase: expect.stringMatching(/^app_restore_20261122t020000z_/),
  });
  expect(failure).toEqual({
    type: 'RestoreFailed',
    message: 'table public.orders: 29 rows restored, the manifest says 30',
  });
});

it('fails after the swap: the restored database stays live (nothing dropped), the applications started again', async () => {
  const analyzeDatabase = async () => {
    throw nonRetryable(ErrorType.RestoreFailed, 'ANALYZE failed: canceling statement due to user request');
  };
  const { failure, calls } = await restoreRun('failed-after-swap', 'approve', { analyzeDatabase });
  // No dropScratchDatabase: the restored copy is the live database now; the applications start on it.
  expect(calls).toEqual([...beforeApproval, ...restored]);
  expect(failure).toEqual({
    type: 'RestoreFailed',
    message: 'ANALYZE failed: canceling statement due to user request',
  });
});

it('tables: restored into their own database without asking anyone, the live database untouched', async () => {
  const { result, calls } = await withStubRun(env, 'wf-restore', stubs(), async (run) => {
    const handle = await start(run, 'tables', { tables: ['public.orders'] });
    const result = (await handle.result()) as RestoreDatabaseResult;
    await recordHistory(handle, 'restoreDatabase-tables');
    return { result, calls: run.calls };
  });
  expect(calls).toEqual(['fetchLogicalFromOffsite', 'planVerify', 'checkIntegrity', 'restoreIntoScratch']);
  expect(result).toMatchObject({
    outcome: 'tables-restored',
    tablesDatabase: expect.stringMatching(/^app_restore_20261122t020000z_/),
  });
});

// promoteStandby's orchestration with stubbed activities on the real dev server: a standby that
// catches up while plan waits is promoted once approved; a rejection promotes nothing; one that stays
// behind the archive with replay paused is refused without asking, unless allowBehindArchive, and
// then the approval says what is lost. With PGWARDEN_RECORD_HISTORIES=1 each run's history is
// recorded for the replay test.
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { judgePromotion, type PromotionLook } from '../../src/lib/promotion.js';
import type { PromoteStandbyResult } from '../../src/workflows/promoteStandby.js';
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

const lookAt = (replayLsn: string, replayPaused = false): PromotionLook => ({
  standby: 'replica1',
  address: 'db2:5432',
  inRecovery: true,
  timeline: 1,
  receiveLsn: '0/6000000',
  replayLsn,
  replayPaused,
  hasRestoreCommand: true,
  primary: { address: 'db1:5432', reachable: false, error: 'ECONNREFUSED' },
  archive: { lastSegment: '000000010000000000000005', histories: [] },
});
const watchOf = (look: PromotionLook, stalled = false) => ({ look, judged: judgePromotion(look), stalled });

/** The first look finds it replaying from the archive, the next caught up. */
function stubs(overrides: Record<string, (...args: unknown[]) => unknown> = {}) {
  let looks = 0;
  return {
    watchPromotionCandidate: async () => (++looks > 1 ? watchOf(lookAt('0/60000A0')) : watchOf(lookAt('0/4800000'))),
    notifyApproval: async () => ({ sent: [], skipped: [] }),
    promoteToPrimary: async () => ({ timeline: 2, switchLsn: '0/60000A0', currentLsn: '0/60000D0', already: false }),
    ...overrides,
  };
}

const start = (run: StubRun, id: string, extra: Record<string, unknown> = {}) =>
  env.client.workflow.start('promoteStandby', {
    taskQueue: run.queue,
    workflowId: `${run.queue}/${id}`,
    args: [{ cluster: 'main', standby: 'replica1', ...extra }],
  });

it('waits while it catches up, asks, and promotes once approved', async () => {
  const { result, atApproval, calls } = await withStubRun(env, 'wf-promote', stubs(), async (run) => {
    const handle = await start(run, 'approved');
    await waitForStep(handle, 'approve');
    const atApproval = [...run.calls];
    await handle.signal('approve', { approver: 'alice', reason: 'INC-42: db1 is gone' });
    const result = (await handle.result()) as PromoteStandbyResult;
    await recordHistory(handle, 'promoteStandby-approved');
    return { result, atApproval, calls: run.calls };
  });
  expect(atApproval).toEqual(['watchPromotionCandidate', 'watchPromotionCandidate', 'notifyApproval']);
  expect(calls).toEqual([...atApproval, 'promoteToPrimary']);
  expect(result).toMatchObject({
    outcome: 'promoted',
    plan: { timeline: 1, replayLsn: '0/60000A0', archiveEnd: '0/6000000', behindBytes: 0 },
    promoted: { timeline: 2, switchLsn: '0/60000A0' },
    decision: { approved: true, approver: 'alice' },
  });
  expect(result.next.join(' ')).toMatch(/createStandby/);
  expect(result.steps.map((s) => s.step)).toEqual(['plan', 'approve', 'promote']);
});

it('rejected: nothing promoted', async () => {
  const { result, calls } = await withStubRun(env, 'wf-promote', stubs(), async (run) => {
    const handle = await start(run, 'rejected');
    await waitForStep(handle, 'approve');
    await handle.signal('reject', { approver: 'bob', reason: 'db1 is back' });
    const result = (await handle.result()) as PromoteStandbyResult;
    await recordHistory(handle, 'promoteStandby-rejected');
    return { result, calls: run.calls };
  });
  expect(calls).not.toContain('promoteToPrimary');
  expect(result).toMatchObject({ outcome: 'rejected', decision: { approved: false, approver: 'bob' } });
});

const pausedBehind = { watchPromotionCandidate: async () => watchOf(lookAt('0/4800000', true), true) };

it('behind the archive with replay paused: refused in plan at once, nothing asked or touched', async () => {
  const { failure, calls } = await withStubRun(env, 'wf-promote', stubs(pausedBehind), async (run) => {
    const handle = await start(run, 'refused');
    const failure = await runFailure(handle);
    await recordHistory(handle, 'promoteStandby-refused');
    return { failure, calls: run.calls };
  });
  expect(calls).toEqual(['watchPromotionCandidate']);
  expect(failure).toMatchObject({ type: 'StandbyBehindArchive' });
  expect(failure.message).toMatch(
    /24\.0 MiB \(2 segments\) behind the archive: replayed to 0\/4800000, the archive ends at 0\/6000000 .*nothing was touched/,
  );
});

it('allowBehindArchive: the approval says what would be lost; promote gets what the approver read', async () => {
  let promoteInput: unknown;
  const overrides = {
    ...pausedBehind,
    promoteToPrimary: async (input: unknown) => {
      promoteInput = input;
      return { timeline: 2, switchLsn: '0/4800000', currentLsn: '0/48000D0', already: false };
    },
  };
  const { detail, calls } = await withStubRun(env, 'wf-promote', stubs(overrides), async (run) => {
    const handle = await start(run, 'allowed', { allowBehindArchive: true });
    await waitForStep(handle, 'approve');
    const detail = ((await handle.query('progress')) as { detail: string }).detail;
    await handle.signal('approve', { approver: 'alice', reason: 'the archive host is gone too' });
    await handle.result();
    return { detail, calls: run.calls };
  });
  expect(detail).toMatch(
    /LAST 24\.0 MiB OF ARCHIVED WAL \(2 segments, from 0\/4800000 to 0\/6000000\) IS NOT ON THE NEW PRIMARY/,
  );
  expect(calls).toEqual(['watchPromotionCandidate', 'notifyApproval', 'promoteToPrimary']);
  expect(promoteInput).toEqual({
    cluster: 'main',
    standby: 'replica1',
    fromTimeline: 1,
    planWarnings: judgePromotion(lookAt('0/4800000', true)).warnings,
    allowBehindArchive: true,
  });
});

it("promote's second look refuses (the primary started again): the run fails with its message, once", async () => {
  const stale = async () => {
    throw ApplicationFailure.nonRetryable(
      'not promoted: since the approval, THE PRIMARY db1:5432 IS UP (not in the approval). Nothing done',
      'ApprovalStale',
    );
  };
  const { failure, calls } = await withStubRun(env, 'wf-promote', stubs({ promoteToPrimary: stale }), async (run) => {
    const handle = await start(run, 'stale');
    await waitForStep(handle, 'approve');
    await handle.signal('approve', { approver: 'alice', reason: 'INC-42' });
    return { failure: await runFailure(handle), calls: run.calls };
  });
  expect(failure).toMatchObject({ type: 'ApprovalStale' });
  expect(failure.message).toMatch(/^not promoted: since the approval, THE PRIMARY .*Nothing done/);
  expect(calls.filter((c) => c === 'promoteToPrimary')).toHaveLength(1);
});

it('a catchUpTimeout that is not a duration fails before anything runs', async () => {
  const { failure, calls } = await withStubRun(env, 'wf-promote', stubs(), async (run) => ({
    failure: await runFailure(await start(run, 'bad-timeout', { catchUpTimeout: 'soon' })),
    calls: run.calls,
  }));
  expect(failure.message).toMatch(/catchUpTimeout "soon" is not a duration/);
  expect(calls).toEqual([]);
});

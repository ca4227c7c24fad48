// Workflow tests with stubbed activities: two stub workers (the shared queue and a database host's
// queue, as pgwarden runs them) whose activities log each call, so a test can assert the exact
// sequence of steps and where each ran.
import { Context } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { LogicalBackupInput, LogicalBackupResult } from '../../src/activities/index.js';
import { startStubWorker, uniqueQueue } from './temporal.js';

/** One activity call as its stub saw it: `name`, or `name@host` when it ran on the host's queue. */
export type Call = string;

export interface StubRun {
  queue: string;
  hostQueue: string;
  /** Calls in the order the stubs started. */
  calls: Call[];
  /** The argument of each call, by activity name (the last call's). */
  args: Record<string, unknown>;
}

type Stub = (...args: never[]) => unknown;

/**
 * Runs `fn` with stub workers on a fresh queue and its host queue (`<queue>@host`); every stub logs
 * its call. A stub's own `label(args)` names the call more precisely (e.g. which hook).
 */
export async function withStubRun<T>(
  env: TestWorkflowEnvironment,
  prefix: string,
  activities: Record<string, Stub>,
  fn: (run: StubRun) => Promise<T>,
  label: (name: string, arg: unknown) => string = (name) => name,
): Promise<T> {
  const queue = uniqueQueue(prefix);
  const run: StubRun = { queue, hostQueue: `${queue}@host`, calls: [], args: {} };
  const logged = Object.fromEntries(
    Object.entries(activities).map(([name, stub]) => [
      name,
      (...args: never[]) => {
        const onHost = Context.current().info.taskQueue === run.hostQueue;
        run.calls.push(`${label(name, args[0])}${onHost ? '@host' : ''}`);
        run.args[name] = args[0];
        return stub(...args);
      },
    ]),
  );
  const workers = [await startStubWorker(env, queue, logged), await startStubWorker(env, run.hostQueue, logged)];
  try {
    return await fn(run);
  } finally {
    for (const w of workers) await w.stop();
  }
}

/** Polls the `progress` query until the run is in `step` (or fails after a minute). */
export async function waitForStep(handle: WorkflowHandle, step: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const progress = await handle.query<{ step: string }>('progress').catch(() => undefined);
    if (progress?.step === step) return;
    if (Date.now() > deadline)
      throw new Error(`run never reached step ${step} within ${timeoutMs} ms (at ${progress?.step})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** An activity stub that heartbeats until cancelled; `started` resolves when it runs, `cancelled` when it saw cancellation. */
export function hangingStub(): { stub: () => Promise<never>; started: Promise<void>; cancelled: Promise<void> } {
  let started!: () => void;
  let cancelled!: () => void;
  const result = {
    started: new Promise<void>((r) => (started = r)),
    cancelled: new Promise<void>((r) => (cancelled = r)),
    stub: async (): Promise<never> => {
      const ctx = Context.current();
      started();
      try {
        for (;;) {
          ctx.heartbeat({ phase: 'stage' });
          await ctx.sleep(200);
        }
      } finally {
        cancelled(); // the real activity kills its tools and removes its partial output here
      }
    },
  };
  return result;
}

/** What a stubbed createLogicalBackup returns for `input`: a small committed backup. */
export const backupOf = (input: LogicalBackupInput): LogicalBackupResult => ({
  ...input,
  path: `/repo/${input.cluster}/logical/${input.database}/${input.backupId}`,
  bytes: 10,
  sha256: '0'.repeat(64),
  tables: 1,
  rows: 1,
  encrypted: false,
  seconds: 0,
  reused: false,
});

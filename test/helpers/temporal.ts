// Test-side Temporal plumbing: a client on the run's dev server, and in-process workers on a
// queue of the test file's own (files run in parallel against one server).
import { randomBytes } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import { liveStatus } from '../../src/cli/client.js';
import { inject } from 'vitest';
import type { Config } from '../../src/config/index.js';
import { createWorkers } from '../../src/worker/worker.js';

export async function testEnvironment(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createFromExistingServer({ address: inject('temporalAddress') });
}

export function uniqueQueue(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export function workflowBundle(): NonNullable<WorkerOptions['workflowBundle']> {
  return { codePath: inject('workflowBundlePath') };
}

export interface RunningWorker {
  stop(): Promise<void>;
}

function run(workers: Worker[]): RunningWorker {
  const running = Promise.all(workers.map((w) => w.run()));
  return {
    async stop() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running;
    },
  };
}

/** pgwarden's real workers (real activities) for `config`, in this process. */
export async function startPgwardenWorker(
  env: TestWorkflowEnvironment,
  config: Config,
  secrets: NodeJS.ProcessEnv,
): Promise<RunningWorker> {
  const workers = await createWorkers({
    config,
    connection: env.nativeConnection,
    env: { ...process.env, ...secrets },
    workflowBundle: workflowBundle(),
    shutdownGraceTime: '2 seconds',
  });
  return run(workers);
}

/**
 * A worker running pgwarden's workflows with stubbed activities. It answers that the namespace has
 * no pgwarden search attributes (a run started without labels then keeps its memo alone): a local
 * activity the worker lacks fails at once when live but waits for its marker on replay.
 */
export async function startStubWorker(
  env: TestWorkflowEnvironment,
  taskQueue: string,
  activities: object,
): Promise<RunningWorker> {
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: workflowBundle(),
    activities: { searchAttributesRegistered: async () => false, ...activities },
    maxHeartbeatThrottleInterval: '1 second',
  });
  return run([worker]);
}

/** Polls a workflow's pending activity heartbeat until `ready` holds (or fails after a minute). */
export async function waitForHeartbeat(
  handle: WorkflowHandle,
  ready: (heartbeat: Record<string, unknown>) => boolean,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const live = await liveStatus(handle);
    if (live.heartbeat && ready(live.heartbeat)) return;
    if (Date.now() > deadline) throw new Error(`no matching heartbeat within ${timeoutMs} ms: ${JSON.stringify(live)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

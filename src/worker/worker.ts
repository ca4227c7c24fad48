// Builds pgwarden's workers: one on the shared queue `pgwarden` (workflows and activities), and
// one on this host's own queue `pgwarden@<host>` for activities that must run where the data is.
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { autoHeartbeat } from './autoHeartbeat.js';
import type { Config } from '../config/index.js';
import { hostQueueName } from '../lib/hostQueue.js';
import { isConnectFailure, temporalUnreachableLine } from '../lib/temporalUnreachable.js';

export function workflowsPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '../workflows/index.ts'), join(here, '../workflows/index.js')];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`workflow sources not found next to ${here}`);
  return found;
}

/** The bundle `npm run build` writes beside the compiled code (dist/workflow-bundle.js), if any. */
export function prebuiltBundle(): string | undefined {
  const candidate = join(dirname(fileURLToPath(import.meta.url)), '../workflow-bundle.js');
  return existsSync(candidate) ? candidate : undefined;
}

/** The worker's connection; an unreachable server is one readable line (lib/temporalUnreachable.ts), not the SDK's transport error. */
export async function connectWorker(address: string): Promise<NativeConnection> {
  return NativeConnection.connect({ address }).catch((err: Error) => {
    throw isConnectFailure(err.message) ? new Error(temporalUnreachableLine(address, err.message)) : err;
  });
}

export function hostQueue(config: Config): string {
  return hostQueueName(config.worker.host ?? hostname());
}

export interface WorkerSetup {
  config: Config;
  connection: NativeConnection;
  env?: NodeJS.ProcessEnv;
  /** A prebuilt bundle (tests build it once per run); default: dist/workflow-bundle.js when running
   * the built code, else bundle the workflow sources at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** How long running activities get to finish on shutdown before they are cancelled (and retried elsewhere). */
  shutdownGraceTime?: WorkerOptions['shutdownGraceTime'];
}

export async function createWorkers(setup: WorkerSetup): Promise<Worker[]> {
  const { config, connection } = setup;
  const activities = createActivities({ config, env: setup.env ?? process.env });
  const common = {
    connection,
    namespace: config.temporal.namespace,
    activities,
    maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentActivities,
    shutdownGraceTime: setup.shutdownGraceTime ?? '30 seconds',
    // Heartbeats carry progress (phase, bytes) to the UI and `pgwarden status`: send them every few
    // seconds rather than the SDK's default of 80% of the heartbeat timeout.
    maxHeartbeatThrottleInterval: '3 seconds',
    // Every activity heartbeats while it runs (keeping its own details), so a dead worker is
    // noticed within the activity options' 20 s heartbeat timeout.
    interceptors: { activity: [autoHeartbeat()] },
  } satisfies Partial<WorkerOptions>;
  const bundlePath = prebuiltBundle();
  const workflows = setup.workflowBundle
    ? { workflowBundle: setup.workflowBundle }
    : bundlePath
      ? { workflowBundle: { codePath: bundlePath } }
      : { workflowsPath: workflowsPath() };
  const shared = await Worker.create({ ...common, taskQueue: config.temporal.taskQueue, ...workflows });
  const local = await Worker.create({ ...common, taskQueue: hostQueue(config) });
  return [shared, local];
}

/** Runs until SIGINT/SIGTERM (the SDK's default shutdown signals), then drains and returns. */
export async function runWorkers(setup: WorkerSetup, log: (line: string) => void = console.log): Promise<void> {
  const workers = await createWorkers(setup);
  log(
    `pgwarden worker: ${setup.config.temporal.address} namespace ${setup.config.temporal.namespace}, ` +
      `queues ${setup.config.temporal.taskQueue} and ${hostQueue(setup.config)}`,
  );
  const metrics = setup.config.metrics.port === undefined ? undefined : await serveMetrics(setup, log);
  try {
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    await metrics?.close();
  }
  log('pgwarden worker: stopped');
}

/** Prometheus metrics (config `metrics.port`), with a Temporal client for the approval count. */
async function serveMetrics(setup: WorkerSetup, log: (line: string) => void): Promise<{ close(): Promise<void> }> {
  const { Client, Connection } = await import('@temporalio/client');
  const { startMetricsServer } = await import('./metrics.js');
  const connection = await Connection.connect({ address: setup.config.temporal.address });
  const client = new Client({ connection, namespace: setup.config.temporal.namespace });
  const server = await startMetricsServer({ config: setup.config, env: setup.env ?? process.env, client });
  log(`pgwarden worker: metrics at ${server.url}`);
  return {
    async close() {
      await server.close();
      await connection.close();
    },
  };
}

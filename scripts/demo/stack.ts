// The demo's stack on one machine, with no configuration: the Temporal dev server (UI on), a
// scratch PostgreSQL 15 archiving its WAL through `pgwarden wal-push`, sample data, versitygw as
// the offsite S3 store, an OpenPGP key, and pgwarden's real workers. Used by `npm run demo` (runs
// every procedure once) and `npm run dev` (stays up for exploring the UI).
//
// PGWARDEN_DEMO_TEMPORAL_ADDRESS: use that Temporal server instead of starting one (the tests: one
// server per test run), on a task queue and worker host name of this run's own.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { ensureSearchAttributes } from '../../src/cli/client.js';
import type { Config } from '../../src/config/index.js';
import { startDevServer, type DevServer } from '../../src/worker/devServer.js';
import { startMetricsServer } from '../../src/worker/metrics.js';
import { createWorkers, workflowsPath } from '../../src/worker/worker.js';
import { startArchivingCluster, type ArchivingSetup } from '../../test/helpers/archiving.js';
import { testSecrets } from '../../test/helpers/config.js';
import { createSampleDatabase } from '../../test/helpers/data.js';
import { createTestKey } from '../../test/helpers/gpg.js';
import { freePort } from '../../test/helpers/ports.js';
import { startS3Server } from '../../test/helpers/s3.js';

const S3_KEY_ENV = 'DEMO_S3_ACCESS_KEY';
const S3_SECRET_ENV = 'DEMO_S3_SECRET_KEY';
export const CLUSTER = 'main';
export const DATABASE = 'app';

export interface DemoStack {
  config: Config;
  /** The config as a file, for `pgwarden --config` (its secrets stay in this process's worker). */
  configFile: string;
  setup: ArchivingSetup;
  client: Client;
  temporalAddress: string;
  /** The web UI, when the demo started the server. */
  uiAddress?: string;
  /** pgwarden's Prometheus metrics, when asked for (`npm run dev`, --metrics-port). */
  metricsUrl?: string;
  /** Unique per run on a shared server (tests); empty otherwise. */
  runSuffix: string;
  /** Stops and removes everything; safe to call more than once. */
  stop(): Promise<void>;
}

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, log: noop, error: console.error };

/** Ports chosen by `npm run dev -- --port P --ui-port U --metrics-port M` (checked free already); unset: random. */
export interface StackPorts {
  port?: number;
  uiPort?: number;
  /** Serve pgwarden's metrics on this port (0: any free one); unset: no metrics. */
  metricsPort?: number;
}

export async function startStack(say: (line: string) => void, ports: StackPorts = {}): Promise<DemoStack> {
  const existing = process.env.PGWARDEN_DEMO_TEMPORAL_ADDRESS;
  const runSuffix = existing ? randomBytes(4).toString('hex') : '';
  const taskQueue = existing ? `pgwarden-demo-${runSuffix}` : 'pgwarden';
  const host = existing ? taskQueue : hostname();

  const stops: (() => Promise<unknown>)[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      for (const s of stops.reverse()) await s().catch(noop);
    })());

  try {
    say(
      existing
        ? `using the Temporal server at ${existing} (task queue ${taskQueue}); starting PostgreSQL 15, the S3 server, an OpenPGP key`
        : 'starting the Temporal dev server with its UI, PostgreSQL 15, the S3 server (versitygw), an OpenPGP key',
    );
    // The demo prints its own lines; the SDK only speaks up for errors.
    Runtime.install({
      logger: new DefaultLogger('ERROR'),
      telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } },
    });
    const bundling = bundleWorkflowCode({ workflowsPath: workflowsPath(), logger: quietLogger });
    bundling.catch(noop);

    // Started together; whatever started is stopped again if another part fails.
    const started = await Promise.allSettled([
      existing
        ? Promise.resolve(undefined)
        : Promise.all([ports.port ?? freePort(), ports.uiPort ?? freePort()]).then(([port, uiPort]) =>
            startDevServer({ port, uiPort, detached: true }),
          ),
      startS3Server(),
      createTestKey(),
    ] as const);
    const [server, s3, key] = started;
    if (server.status === 'fulfilled' && server.value) stops.push(() => (server.value as DevServer).stop());
    if (s3.status === 'fulfilled') stops.push(() => s3.value.destroy());
    if (key.status === 'fulfilled') stops.push(() => key.value.remove());
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    if (server.status !== 'fulfilled' || s3.status !== 'fulfilled' || key.status !== 'fulfilled')
      throw new Error('unreachable');

    await s3.value.bucket('offsite');
    const setup = await startArchivingCluster({
      taskQueue,
      key: key.value,
      extra: {
        repositories: {
          s3: {
            type: 's3',
            bucket: 'offsite',
            endpoint: s3.value.endpoint,
            forcePathStyle: true,
            accessKeyIdEnv: S3_KEY_ENV,
            secretAccessKeyEnv: S3_SECRET_ENV,
          },
        },
        // What the recovered cluster must hold, checked by PITR's own `verify` step.
        verification: {
          checks: { [DATABASE]: [{ name: 'documents table', sql: 'SELECT count(*) FROM documents', min: 1 }] },
        },
      },
    });
    stops.push(() => setup.remove());
    const temporalAddress = existing ?? server.value!.address;
    const config: Config = {
      ...setup.config,
      temporal: { ...setup.config.temporal, address: temporalAddress },
      worker: { ...setup.config.worker, host },
      clusters: { [CLUSTER]: { ...setup.config.clusters[CLUSTER]!, hostQueue: `pgwarden@${host}` } },
    };
    const configFile = join(setup.dir, 'demo.config.json');
    await writeFile(configFile, JSON.stringify(config, null, 2) + '\n');
    say(
      `PostgreSQL 15 on ${setup.cluster.host}:${setup.cluster.port}, archive_command = pgwarden wal-push; S3 at ${s3.value.endpoint}`,
    );
    say(`creating database "${DATABASE}" with sample data`);
    await createSampleDatabase(setup.cluster, DATABASE, 0.2);

    const secrets = {
      ...testSecrets(setup.cluster, key.value),
      [S3_KEY_ENV]: s3.value.accessKey,
      [S3_SECRET_ENV]: s3.value.secretKey,
    };
    const native = await NativeConnection.connect({ address: temporalAddress });
    stops.push(() => native.close());
    const workers: Worker[] = await createWorkers({
      config,
      connection: native,
      env: { ...process.env, ...secrets },
      workflowBundle: await bundling,
      shutdownGraceTime: '2 seconds',
    });
    const running = Promise.all(workers.map((w) => w.run()));
    running.catch(noop);
    stops.push(async () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running;
    });
    const connection = await Connection.connect({ address: temporalAddress });
    stops.push(() => connection.close());
    const client = new Client({ connection, namespace: config.temporal.namespace });
    await ensureSearchAttributes(client);
    say(`pgwarden's workers poll ${taskQueue} and pgwarden@${host}`);
    let metricsUrl: string | undefined;
    if (ports.metricsPort !== undefined) {
      const metrics = await startMetricsServer({
        config,
        env: { ...process.env, ...secrets },
        client,
        port: ports.metricsPort,
      });
      stops.push(() => metrics.close());
      metricsUrl = metrics.url;
    }
    return {
      config,
      configFile,
      setup,
      client,
      temporalAddress,
      uiAddress: server.value?.uiAddress,
      metricsUrl,
      runSuffix,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

// Logical backups from a real streaming standby (test/helpers/standby.ts). The standby cancels
// conflicting queries after 10 ms (max_standby_streaming_delay), so a dump that did not hold replay
// would be cancelled by the primary's DELETE + VACUUM during it: it completes, comes from the
// standby (the manifest says so), restores with the rows of its start, and leaves replay running.
// Paused past the lag limit, the standby serves nothing: prefer-standby takes the primary, standby
// fails naming why. A worker killed mid-dump on the standby: replay runs again afterwards.
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLogicalBackupActivities } from '../../src/activities/logicalBackup.js';
import type { Config } from '../../src/config/index.js';
import { parseLogicalManifest } from '../../src/lib/manifest.js';
import type { FullBackupResult } from '../../src/workflows/fullBackup.js';
import { testConfig, testSecrets } from '../helpers/config.js';
import { createSampleDatabase } from '../helpers/data.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { startCluster, type TestCluster } from '../helpers/postgres.js';
import { restoreWithStockTools, rowCounts } from '../helpers/restore.js';
import { startStandby, type TestStandby } from '../helpers/standby.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, waitForHeartbeat } from '../helpers/temporal.js';
import { spawnWorker, type WorkerProcess } from '../helpers/workerProcess.js';

let primary: TestCluster;
let standby: TestStandby;
let key: TestKey;
let env: TestWorkflowEnvironment;
let dir: string;
const workers: WorkerProcess[] = [];

const paused = async () => (await standby.query<{ p: boolean }>('SELECT pg_is_wal_replay_paused() AS p'))[0]!.p;
/** Until the standby has replayed everything the primary wrote so far. */
async function caughtUp(): Promise<void> {
  const lsn = (await primary.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn'))[0]!.lsn;
  for (let i = 0; i < 300; i++) {
    const [r] = await standby.query<{ ok: boolean }>(`SELECT pg_last_wal_replay_lsn() >= '${lsn}' AS ok`);
    if (r!.ok) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('the standby did not catch up');
}
function configFor(queue: string, extra: Partial<Config> = {}): Config {
  const config = testConfig({ cluster: primary, repository: join(dir, queue), taskQueue: queue, key, extra });
  config.clusters.main!.standbys = [{ name: 'replica1', host: standby.host, port: standby.port }];
  return config;
}
const backupDir = (config: Config, id: string) =>
  join((config.repositories.local as { path: string }).path, 'main/logical/app', id);

beforeAll(async () => {
  [primary, key, env] = await Promise.all([startCluster(), createTestKey(), testEnvironment()]);
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-standby-backup-'));
  await createSampleDatabase(primary, 'app');
  standby = await startStandby(primary, 'replica1');
  await appendFile(join(standby.dataDir, 'postgresql.auto.conf'), `max_standby_streaming_delay = '10ms'\n`);
  await standby.query('SELECT pg_reload_conf()');
  await caughtUp();
}, 180_000);

afterAll(async () => {
  for (const w of workers) await w.kill('SIGKILL').catch(() => undefined);
  await env?.teardown();
  await standby?.remove();
  await Promise.all([primary?.stop(), key?.remove(), dir && rm(dir, { recursive: true, force: true })]);
});

it('a dump on the standby survives the primary writing and vacuuming, and restores its start', async () => {
  const queue = uniqueQueue('standby-dump');
  // 1 MB/s stored: the dump (~12 MB) streams for seconds while the primary writes.
  const config = configFor(queue, { limits: { maxRate: 1_000_000 } } as Partial<Config>);
  const worker = await startPgwardenWorker(env, config, testSecrets(primary, key));
  try {
    const handle = await env.client.workflow.start('fullBackup', {
      taskQueue: queue,
      workflowId: `${queue}/app`,
      args: [{ cluster: 'main', database: 'app', backupId: '20261125T020000Z' }],
    });
    await waitForHeartbeat(handle, (hb) => hb.phase === 'dump' && Number(hb.storedBytes) > 500_000);
    expect(await paused()).toBe(true);
    await primary.query(
      'DELETE FROM orders WHERE id % 2 = 0; INSERT INTO users (id, email) VALUES (0, $$late$$)',
      'app',
    );
    await primary.query('VACUUM orders', 'app');
    const result = (await handle.result()) as FullBackupResult;
    expect(result.backups[0]!.source).toMatchObject({ role: 'standby', name: 'replica1', port: standby.port });
    expect(await paused()).toBe(false);

    const at = backupDir(config, '20261125T020000Z');
    const manifest = parseLogicalManifest(await readFile(join(at, 'manifest.json'), 'utf8'));
    expect(manifest.source).toMatchObject({ role: 'standby', name: 'replica1', host: standby.host });
    expect(manifest.source!.lagBytes).toBeLessThanOrEqual(1024 * 1024);
    const orders = manifest.tables.find((t) => t.name === 'orders');
    expect(orders?.rows).toBe(150_000);
    await restoreWithStockTools(primary, key, at, manifest, 'app_from_standby');
    expect(await rowCounts(primary, 'app_from_standby', manifest.tables)).toEqual(manifest.tables);
    await caughtUp(); // replay went on: what the primary wrote during the dump reached the standby
  } finally {
    await worker.stop();
  }
}, 180_000);

it('replay paused past the lag limit: prefer-standby backs up the primary, standby fails naming why', async () => {
  await standby.query('SELECT pg_wal_replay_pause()');
  try {
    await primary.query(`CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 20000) g`);
    const input = { cluster: 'main', database: 'app', backupId: '20261125T030000Z' };
    const prefer = configFor('prefer');
    const { source } = await createLogicalBackupActivities({
      config: prefer,
      env: testSecrets(primary, key),
    }).preflightLogicalBackup(input);
    expect(source).toMatchObject({ role: 'primary', host: primary.host, port: primary.port });
    expect(source!.reason).toMatch(/^no standby can serve a backup \(replica1: replay paused/);

    const strict = configFor('strict');
    strict.clusters.main!.backupFrom = 'standby';
    const err = await createLogicalBackupActivities({ config: strict, env: testSecrets(primary, key) })
      .preflightLogicalBackup(input)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'StandbyUnavailable', nonRetryable: true });
    expect((err as Error).message).toMatch(
      /^cluster "main" backs up from a standby only \(backupFrom "standby"\) and no standby can serve a backup \(replica1: replay paused \(paused\)\)$/,
    );
  } finally {
    await standby.query('SELECT pg_wal_replay_resume()');
  }
  await caughtUp();
});

it('the worker killed mid-dump on the standby: the backup completes and replay runs again', async () => {
  const queue = uniqueQueue('standby-crash');
  const config = configFor(queue, { limits: { maxRate: 1_000_000 } } as Partial<Config>);
  const secrets = testSecrets(primary, key);
  workers.push(await spawnWorker(join(dir, 'config.json'), config, secrets));
  const handle = await env.client.workflow.start('fullBackup', {
    taskQueue: queue,
    workflowId: `${queue}/app`,
    args: [{ cluster: 'main', database: 'app', backupId: '20261125T040000Z' }],
  });
  await waitForHeartbeat(handle, (hb) => hb.phase === 'dump' && Number(hb.storedBytes) > 1_000_000);
  await workers[0]!.kill('SIGKILL');
  expect(await paused()).toBe(true); // the killed dump left replay paused
  workers.push(await spawnWorker(join(dir, 'config.json'), config, secrets));
  const result = (await handle.result()) as FullBackupResult;
  expect(result.backups[0]).toMatchObject({ reused: false, source: { role: 'standby', name: 'replica1' } });
  expect(await paused()).toBe(false);
  const events = (await handle.fetchHistory()).events ?? [];
  const attempts = events.map((e) => e.activityTaskStartedEventAttributes?.attempt ?? 0);
  expect(Math.max(...attempts)).toBeGreaterThanOrEqual(2);
  const resumed = events.filter(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'resumeStandbyReplay',
  );
  expect(resumed).toHaveLength(1);
  await primary.query('CREATE TABLE after_crash (id int)');
  await caughtUp(); // replay follows the primary again
}, 240_000);

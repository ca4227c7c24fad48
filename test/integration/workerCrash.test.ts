// Fault paths of a running dump: the worker killed (SIGKILL) mid-stream, a clean SIGTERM stop,
// and a cancelled backup. Each ends with nothing partial in the repository and no pg_dump left.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseLogicalManifest } from '../../src/lib/manifest.js';
import type { FullBackupResult } from '../../src/workflows/fullBackup.js';
import { testConfig, testSecrets } from '../helpers/config.js';
import { createSampleDatabase } from '../helpers/data.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { startCluster, type TestCluster } from '../helpers/postgres.js';
import { restoreWithStockTools, rowCounts } from '../helpers/restore.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, waitForHeartbeat } from '../helpers/temporal.js';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { existsSync } from 'node:fs';
import { spawnWorker, type WorkerProcess } from '../helpers/workerProcess.js';

let cluster: TestCluster;
let key: TestKey;
let env: TestWorkflowEnvironment;
let dir: string;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  [cluster, key, env] = await Promise.all([startCluster(), createTestKey(), testEnvironment()]);
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-crash-'));
  await createSampleDatabase(cluster, 'app');
});

afterAll(async () => {
  for (const w of workers) await w.kill('SIGKILL').catch(() => undefined);
  await env?.teardown();
  await Promise.all([cluster?.stop(), key?.remove(), dir && rm(dir, { recursive: true, force: true })]);
});

it('a worker killed mid-dump is replaced and the backup completes exactly once', async () => {
  const queue = uniqueQueue('crash');
  const repository = join(dir, 'repo');
  // Throttled to 1 MB/s stored, so the dump (~12 MB compressed) streams for several seconds.
  const config = testConfig({ cluster, repository, taskQueue: queue, key, extra: { limits: { maxRate: 1_000_000 } } });
  const secrets = testSecrets(cluster, key);
  workers.push(await spawnWorker(join(dir, 'config.json'), config, secrets));

  const handle = await env.client.workflow.start('fullBackup', {
    taskQueue: queue,
    workflowId: `${queue}/app`,
    args: [{ cluster: 'main', database: 'app', backupId: '20261122T020000Z' }],
  });

  // Wait until the dump is really streaming (heartbeat shows bytes), then kill the worker.
  await waitForHeartbeat(handle, (hb) => hb.phase === 'dump' && Number(hb.storedBytes) > 1_000_000);
  await workers[0]!.kill('SIGKILL');
  const backupDir = join(repository, 'main/logical/app/20261122T020000Z');
  expect((await readdir(backupDir)).some((f) => f.endsWith('.partial'))).toBe(true); // killed mid-write

  workers.push(await spawnWorker(join(dir, 'config.json'), config, secrets));
  const result = (await handle.result()) as FullBackupResult;
  expect(result.backups[0]).toMatchObject({ backupId: '20261122T020000Z', reused: false });

  // The activity really ran twice: the first attempt died with the worker.
  const history = await handle.fetchHistory();
  const attempts = history.events!.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 0);
  expect(Math.max(...attempts)).toBeGreaterThanOrEqual(2);

  // Exactly one backup, complete, nothing partial anywhere in the repository.
  expect(await readdir(join(repository, 'main/logical/app'))).toEqual(['20261122T020000Z']);
  const all = (await readdir(repository, { recursive: true })).map(String);
  expect(all.filter((f) => f.includes('.partial'))).toEqual([]);
  expect((await readdir(backupDir)).sort()).toEqual(['dump.pgdump.zst.gpg', 'globals.sql.zst.gpg', 'manifest.json']);
  const manifest = parseLogicalManifest(await readFile(join(backupDir, 'manifest.json'), 'utf8'));
  await restoreWithStockTools(cluster, key, backupDir, manifest, 'app_check');
  expect(await rowCounts(cluster, 'app_check', manifest.tables)).toEqual(manifest.tables);

  // The killed attempt's pg_dump did not linger: no pgwarden session is left on the server.
  const sessions = await cluster.query(`SELECT pid FROM pg_stat_activity WHERE application_name = 'pgwarden'`);
  expect(sessions).toEqual([]);

  // SIGTERM is a clean stop: the worker drains and exits 0.
  const last = workers.pop()!;
  const exit = await last.stop('SIGTERM');
  expect(exit).toBe(0);
  expect(last.output()).toContain('pgwarden worker: stopped');
});

it('cancelling a running backup stops pg_dump and removes the partial backup', async () => {
  const queue = uniqueQueue('cancel');
  const repository = join(dir, 'repo-cancel');
  const config = testConfig({ cluster, repository, taskQueue: queue, key, extra: { limits: { maxRate: 1_000_000 } } });
  const worker = await startPgwardenWorker(env, config, testSecrets(cluster, key));
  try {
    const handle = await env.client.workflow.start('fullBackup', {
      taskQueue: queue,
      workflowId: `${queue}/app`,
      args: [{ cluster: 'main', database: 'app', backupId: '20261122T030000Z' }],
    });
    await waitForHeartbeat(handle, (hb) => Number(hb.storedBytes) > 1_000_000);
    await handle.cancel();
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(existsSync(join(repository, 'main/logical/app/20261122T030000Z'))).toBe(false);
    const dumps = await cluster.query(`SELECT pid FROM pg_stat_activity WHERE application_name = 'pgwarden'`);
    expect(dumps).toEqual([]);
  } finally {
    await worker.stop();
  }
});

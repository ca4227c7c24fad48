// verifyBackup against real PostgreSQL and Temporal: a good backup verifies and is recorded; a
// flipped byte, a truncated file and a wrong key fail clearly; a worker killed mid-restore is
// replaced; and no pgwarden_verify_* database survives any of it.
import { mkdtemp, readFile, rm, stat, truncate } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/index.js';
import { parseLogicalManifest } from '../../src/lib/manifest.js';
import type { FullBackupResult } from '../../src/workflows/fullBackup.js';
import type { VerifyBackupResult } from '../../src/workflows/verifyBackup.js';
import { testConfig, testSecrets } from '../helpers/config.js';
import { createSampleDatabase } from '../helpers/data.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { startCluster, type TestCluster } from '../helpers/postgres.js';
import {
  startPgwardenWorker,
  testEnvironment,
  uniqueQueue,
  waitForHeartbeat,
  type RunningWorker,
} from '../helpers/temporal.js';
import { spawnWorker } from '../helpers/workerProcess.js';

let cluster: TestCluster;
let key: TestKey;
let otherKey: TestKey;
let env: TestWorkflowEnvironment;
let dir: string;
let config: Config;
let worker: RunningWorker;
let keepAll: { retention: { daily: number; weekly: number; monthly: number; yearly: number; minimum: number } };
const queue = uniqueQueue('verify');

beforeAll(async () => {
  [cluster, key, otherKey, env] = await Promise.all([
    startCluster(),
    createTestKey(),
    createTestKey(),
    testEnvironment(),
  ]);
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-verify-'));
  await createSampleDatabase(cluster, 'app', 0.25);
  // Retention keeps everything here: these tests verify older backups after newer ones are made.
  keepAll = { retention: { daily: 0, weekly: 0, monthly: 0, yearly: 0, minimum: 100 } };
  config = testConfig({ cluster, repository: join(dir, 'repo'), taskQueue: queue, key, extra: keepAll });
  worker = await startPgwardenWorker(env, config, testSecrets(cluster, key));
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await Promise.all([
    cluster?.stop(),
    key?.remove(),
    otherKey?.remove(),
    dir && rm(dir, { recursive: true, force: true }),
  ]);
});

async function backup(backupId: string, verify = false): Promise<FullBackupResult> {
  return (await env.client.workflow.execute('fullBackup', {
    taskQueue: queue,
    workflowId: `${queue}/backup/${backupId}`,
    args: [{ cluster: 'main', database: 'app', backupId, verify }],
  })) as FullBackupResult;
}

async function verifyFails(backupId: string, taskQueue = queue): Promise<ApplicationFailure> {
  const err = await env.client.workflow
    .execute('verifyBackup', {
      taskQueue,
      workflowId: `${taskQueue}/verify/${backupId}/${Math.random()}`,
      args: [{ cluster: 'main', database: 'app', backupId }],
    })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = ((err as WorkflowFailedError).cause as ActivityFailure).cause as ApplicationFailure;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause;
}

const scratchDatabases = async () =>
  (
    await cluster.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE 'pgwarden\\_verify\\_%'`,
    )
  ).map((r) => r.datname);
const manifestOf = async (backupId: string) =>
  parseLogicalManifest(await readFile(join(dir, 'repo/main/logical/app', backupId, 'manifest.json'), 'utf8'));
const dumpFile = (backupId: string) => join(dir, 'repo/main/logical/app', backupId, 'dump.pgdump.zst.gpg');

describe('verifyBackup', () => {
  it('fullBackup with verify: true restores the backup and records the verification', async () => {
    const result = await backup('20261122T020000Z', true);
    expect(result.verifications).toHaveLength(1);
    const v = result.verifications[0]!;
    expect(v).toMatchObject({ backupId: '20261122T020000Z', ok: true, tables: 5 });
    expect(v.restoreSeconds).toBeGreaterThan(0);
    const manifest = await manifestOf('20261122T020000Z');
    expect(v.rows).toBe(manifest.tables.reduce((s, t) => s + t.rows, 0));
    expect(manifest.verifications).toEqual([
      expect.objectContaining({ ok: true, method: 'restore', restoreSeconds: v.restoreSeconds }),
    ]);
    expect(await scratchDatabases()).toEqual([]);
  });

  it('defaults to the newest backup not verified yet', async () => {
    await backup('20261122T030000Z');
    const result = (await env.client.workflow.execute('verifyBackup', {
      taskQueue: queue,
      workflowId: `${queue}/verify/default`,
      args: [{ cluster: 'main', database: 'app' }],
    })) as VerifyBackupResult;
    expect(result.backupId).toBe('20261122T030000Z');
  });

  it('fails with an integrity error naming the file and both hashes when one byte is flipped', async () => {
    await backup('20261122T040000Z');
    const file = dumpFile('20261122T040000Z');
    const handle = await open(file, 'r+');
    const { size } = await handle.stat();
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, Math.floor(size / 2));
    await handle.write(Buffer.from([byte[0]! ^ 0x01]), 0, 1, Math.floor(size / 2));
    await handle.close();
    const manifest = await manifestOf('20261122T040000Z');
    const cause = await verifyFails('20261122T040000Z');
    expect(cause.type).toBe('IntegrityError');
    expect(cause.message).toContain(file);
    expect(cause.message).toContain(manifest.sha256);
    expect(cause.message).toMatch(/sha256 [0-9a-f]{64} \(\d+ bytes\), manifest says [0-9a-f]{64}/);
    expect((await manifestOf('20261122T040000Z')).verifications).toEqual([expect.objectContaining({ ok: false })]);
    expect(await scratchDatabases()).toEqual([]);
  });

  it('fails clearly on a truncated artifact', async () => {
    await backup('20261122T050000Z');
    const file = dumpFile('20261122T050000Z');
    const { size } = await stat(file);
    await truncate(file, Math.floor(size / 3));
    const cause = await verifyFails('20261122T050000Z');
    expect(cause.type).toBe('IntegrityError');
    expect(cause.message).toMatch(
      new RegExp(`${file} is corrupt: .*\\(${Math.floor(size / 3)} bytes\\), manifest says .*\\(${size} bytes\\)`),
    );
    expect(await scratchDatabases()).toEqual([]);
  });

  it('fails clearly with the wrong decryption key', async () => {
    const altQueue = uniqueQueue('verify-wrong-key');
    const alt = await startPgwardenWorker(
      env,
      {
        ...config,
        temporal: { ...config.temporal, taskQueue: altQueue },
        worker: { ...config.worker, host: altQueue },
        encryption: { ...config.encryption!, privateKeyFile: otherKey.privateKeyFile },
      },
      { ...testSecrets(cluster), PGWARDEN_TEST_PASSPHRASE: otherKey.passphrase },
    );
    try {
      const cause = await verifyFails('20261122T020000Z', altQueue);
      expect(cause.type).toBe('DecryptionFailed');
      expect(cause.message).toMatch(/cannot decrypt/);
      expect(cause.nonRetryable).toBe(true);
    } finally {
      await alt.stop();
    }
    expect(await scratchDatabases()).toEqual([]);
  });

  it('finishes after the worker is killed during the restore, leaving no temporary database', async () => {
    const crashQueue = uniqueQueue('verify-crash');
    // Throttled reading (1 MB/s) so the restore takes several seconds.
    const crashConfig = testConfig({
      cluster,
      repository: join(dir, 'repo'),
      taskQueue: crashQueue,
      key,
      extra: { ...keepAll, limits: { maxRate: 1_000_000 } },
    });
    const configFile = join(dir, 'crash.json');
    const secrets = testSecrets(cluster, key);
    const first = await spawnWorker(configFile, crashConfig, secrets);
    const handle = await env.client.workflow.start('verifyBackup', {
      taskQueue: crashQueue,
      workflowId: `${crashQueue}/verify`,
      args: [{ cluster: 'main', database: 'app', backupId: '20261122T020000Z' }],
    });
    await waitForHeartbeat(handle, (hb) => hb.phase === 'restore' && Number(hb.bytes) > 500_000);
    expect(await scratchDatabases()).toEqual(['pgwarden_verify_20261122t020000z']);
    await first.kill('SIGKILL');
    const second = await spawnWorker(configFile, crashConfig, secrets);
    try {
      const result = (await handle.result()) as VerifyBackupResult;
      expect(result).toMatchObject({ ok: true, backupId: '20261122T020000Z' });
    } finally {
      await second.kill('SIGTERM');
    }
    expect(await scratchDatabases()).toEqual([]);
  });
});

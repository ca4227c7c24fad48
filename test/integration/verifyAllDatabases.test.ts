// The nightly pair the default schedules run, fullBackup "*" then verifyBackup "*", against real
// PostgreSQL and Temporal: the "*" backup leaves out a restore's kept copies (unless asked), and the
// verification restores every database the newest "*" run took; a broken backup of one database
// does not hide the others' results, and the run fails naming every broken one.
import { open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLogicalManifest } from '../../src/lib/manifest.js';
import type { FullBackupResult } from '../../src/workflows/fullBackup.js';
import type { HealthCheckResult } from '../../src/workflows/healthCheck.js';
import type { VerifyBackupResult } from '../../src/workflows/verifyBackup.js';
import { testConfig, testSecrets } from '../helpers/config.js';
import { startCluster, type TestCluster } from '../helpers/postgres.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

let cluster: TestCluster;
let env: TestWorkflowEnvironment;
let dir: string;
let worker: RunningWorker;
const queue = uniqueQueue('verify-all');
// What restoreDatabase leaves: the live database renamed aside, and a tables-mode restore's copy.
const KEPT = 'app_pre_restore_20261120t020000z_a1b2c3';
const COPY = 'shop_restore_20261120t020000z_d4e5f6';

beforeAll(async () => {
  [cluster, env] = await Promise.all([startCluster(), testEnvironment()]);
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-verify-all-'));
  for (const db of ['app', 'shop', KEPT, COPY]) {
    await cluster.query(`CREATE DATABASE "${db}"`);
    await cluster.query(
      `CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, ${db === 'shop' ? 300 : 200}) g`,
      db,
    );
  }
  const keepAll = { retention: { daily: 0, weekly: 0, monthly: 0, yearly: 0, minimum: 100 } };
  worker = await startPgwardenWorker(
    env,
    testConfig({ cluster, repository: join(dir, 'repo'), taskQueue: queue, extra: keepAll }),
    testSecrets(cluster),
  );
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await Promise.all([cluster?.stop(), dir && rm(dir, { recursive: true, force: true })]);
});

const logical = (...p: string[]) => join(dir, 'repo/main/logical', ...p);
const manifestOf = async (db: string, id: string) =>
  parseLogicalManifest(await readFile(logical(db, id, 'manifest.json'), 'utf8'));

async function backupAll(backupId: string, extra: Record<string, unknown> = {}): Promise<FullBackupResult> {
  return (await env.client.workflow.execute('fullBackup', {
    taskQueue: queue,
    workflowId: `${queue}/all/${backupId}`,
    args: [{ cluster: 'main', database: '*', backupId, ...extra }],
  })) as FullBackupResult;
}

const verifyAll = (name: string) =>
  env.client.workflow.execute('verifyBackup', {
    taskQueue: queue,
    workflowId: `${queue}/verify-all/${name}`,
    args: [{ cluster: 'main', database: '*' }],
  });

async function breakDump(database: string, backupId: string): Promise<void> {
  const name = (await readdir(logical(database, backupId))).find((f) => f.startsWith('dump.pgdump'))!;
  const handle = await open(logical(database, backupId, name), 'r+');
  const { size } = await handle.stat();
  const byte = Buffer.alloc(1);
  await handle.read(byte, 0, 1, Math.floor(size / 2));
  await handle.write(Buffer.from([byte[0]! ^ 0x01]), 0, 1, Math.floor(size / 2));
  await handle.close();
}

describe('fullBackup "*" and verifyBackup "*"', () => {
  it('a "*" backup skips the restore copies unless includeRestoreCopies; verify "*" restores each database of the newest "*" run', async () => {
    const withCopies = await backupAll('20261121T020000Z', { includeRestoreCopies: true });
    expect(withCopies.backups.map((b) => b.database).sort()).toEqual(['app', KEPT, 'postgres', 'shop', COPY].sort());

    const nightly = await backupAll('20261122T020000Z');
    expect(nightly.backups.map((b) => b.database).sort()).toEqual(['app', 'postgres', 'shop']);
    expect(await readdir(logical(KEPT))).toEqual(['20261121T020000Z']);
    expect((await manifestOf('shop', '20261122T020000Z')).allDatabases).toBe(true);
    // A later backup of one database is not a "*" run: the verification stays with the nightly's.
    await env.client.workflow.execute('fullBackup', {
      taskQueue: queue,
      workflowId: `${queue}/app/single`,
      args: [{ cluster: 'main', database: 'app', backupId: '20261122T030000Z' }],
    });
    expect((await manifestOf('app', '20261122T030000Z')).allDatabases).toBeUndefined();

    const result = (await verifyAll('good')) as VerifyBackupResult;
    expect(result.databases!.map((v) => [v.database, v.backupId, v.ok])).toEqual([
      ['app', '20261122T020000Z', true],
      ['postgres', '20261122T020000Z', true],
      ['shop', '20261122T020000Z', true],
    ]);
    expect(result).toMatchObject({ database: '*', backupId: '20261122T020000Z', ok: true });
    expect(result.databases!.find((v) => v.database === 'shop')!.rows).toBe(300);
    expect(result.rows).toBe(500);
    for (const db of ['app', 'postgres', 'shop']) {
      expect((await manifestOf(db, '20261122T020000Z')).verifications).toEqual([expect.objectContaining({ ok: true })]);
    }
    // Neither the copies' backups nor the single run's were restored.
    expect((await manifestOf(KEPT, '20261121T020000Z')).verifications).toEqual([]);
    expect((await manifestOf('app', '20261122T030000Z')).verifications).toEqual([]);
  });

  it('healthCheck does not watch the copies: their backups from before no longer age into alerts', async () => {
    // The copies' only backups, as if an older "*" had taken them ten days ago.
    const old = new Date(Date.now() - 10 * 86_400_000).toISOString();
    for (const db of [KEPT, COPY]) {
      const file = logical(db, '20261121T020000Z', 'manifest.json');
      await writeFile(
        file,
        JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), startedAt: old, finishedAt: old }, null, 2),
      );
    }
    const health = (await env.client.workflow.execute('healthCheck', {
      taskQueue: queue,
      workflowId: `${queue}/health`,
      args: [{ cluster: 'main' }],
    })) as HealthCheckResult;
    expect(health.alerts.filter((a) => a.key.includes('_restore_'))).toEqual([]);
    expect(health.snapshot.backups.filter((b) => b.kind === 'logical').map((b) => b.database)).toEqual([
      'app',
      'postgres',
      'shop',
    ]);
  });

  it('a broken backup fails the run naming every broken database, and the others are still verified', async () => {
    await breakDump('app', '20261122T020000Z');
    await breakDump('postgres', '20261122T020000Z');
    const err = await verifyAll('broken').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause.type).toBe('VerificationFailed');
    expect(cause.nonRetryable).toBe(true);
    expect(cause.message).toMatch(/^2 of 3 databases failed verification: /);
    expect(cause.message).toMatch(/app \(20261122T020000Z\): .*sha256/);
    expect(cause.message).toMatch(/postgres \(20261122T020000Z\): .*sha256/);
    expect(cause.message).not.toMatch(/shop/);
    // shop, after both broken ones in name order, was verified again; the broken ones are recorded as failed.
    expect((await manifestOf('shop', '20261122T020000Z')).verifications.map((v) => v.ok)).toEqual([true, true]);
    expect((await manifestOf('app', '20261122T020000Z')).verifications.map((v) => v.ok)).toEqual([true, false]);
    expect((await manifestOf('postgres', '20261122T020000Z')).verifications.map((v) => v.ok)).toEqual([true, false]);
    expect(await cluster.query(`SELECT datname FROM pg_database WHERE datname LIKE 'pgwarden\\_verify\\_%'`)).toEqual(
      [],
    );
  });
});

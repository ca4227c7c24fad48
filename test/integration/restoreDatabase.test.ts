// restoreDatabase: approved, the live database holds the backup's data and the previous one is kept
// as <db>_pre_restore_<id>_<run>; rejected or unanswered, the live database is untouched. Restoring the
// same backup again does the whole restore again; a swap that cannot keep the live database fails.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRestoreActivities } from '../../src/activities/restore.js';
import type { Config } from '../../src/config/index.js';
import { restoreNames } from '../../src/lib/ids.js';
import type { Progress } from '../../src/workflows/messages.js';
import type { RestoreDatabaseResult } from '../../src/workflows/restoreDatabase.js';
import { testConfig, testSecrets } from '../helpers/config.js';
import { createSampleDatabase } from '../helpers/data.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { startCluster, type TestCluster } from '../helpers/postgres.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

let cluster: TestCluster;
let key: TestKey;
let env: TestWorkflowEnvironment;
let dir: string;
let config: Config;
let worker: RunningWorker;
const queue = uniqueQueue('restore');
const root = join(import.meta.dirname, '../..');
const BACKUP = '20261122T020000Z';

beforeAll(async () => {
  [cluster, key, env] = await Promise.all([startCluster(), createTestKey(), testEnvironment()]);
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-restore-'));
  await createSampleDatabase(cluster, 'app', 0.1);
  const hookLog = join(dir, 'hooks.log');
  config = testConfig({ cluster, repository: join(dir, 'repo'), taskQueue: queue, key });
  config.clusters.main!.hooks = {
    preRestore: ['/bin/sh', '-c', `echo "stop $PGWARDEN_DATABASE" >> ${hookLog}`],
    postRestore: ['/bin/sh', '-c', `echo "start $PGWARDEN_DATABASE" >> ${hookLog}`],
  };
  worker = await startPgwardenWorker(env, config, testSecrets(cluster, key));
  await env.client.workflow.execute('fullBackup', {
    taskQueue: queue,
    workflowId: `${queue}/backup`,
    args: [{ cluster: 'main', database: 'app', backupId: BACKUP }],
  });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await Promise.all([cluster?.stop(), key?.remove(), dir && rm(dir, { recursive: true, force: true })]);
});

const counts = async (database: string) =>
  cluster.query<{ users: string; orders: string }>(
    'SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM orders) AS orders',
    database,
  );
const databases = async () =>
  (await cluster.query<{ datname: string }>('SELECT datname FROM pg_database ORDER BY 1')).map((r) => r.datname);
const KEPT = /^app_pre_restore_20261122t020000z_[0-9a-f]{6}$/;
let firstKept: string;

async function startRestore(name: string, approvalTimeout = '10 minutes'): Promise<WorkflowHandle> {
  const handle = await env.client.workflow.start('restoreDatabase', {
    taskQueue: queue,
    workflowId: `${queue}/${name}`,
    args: [{ cluster: 'main', database: 'app', backupId: BACKUP, approvalTimeout }],
  });
  const deadline = Date.now() + 60_000;
  while ((await handle.query<Progress>('progress')).step !== 'approve') {
    if (Date.now() > deadline) throw new Error('never reached approve');
    await new Promise((r) => setTimeout(r, 200));
  }
  return handle;
}

describe('restoreDatabase', () => {
  it('does nothing when rejected (with the temporal CLI, as the README shows)', async () => {
    await cluster.query('DELETE FROM orders WHERE id % 2 = 0', 'app');
    const before = await counts('app');
    const handle = await startRestore('rejected');
    await execa(join(root, '.tools/bin/temporal'), [
      'workflow',
      'signal',
      '--workflow-id',
      handle.workflowId,
      '--name',
      'reject',
      '--input',
      '{"approver":"alice","reason":"wrong backup"}',
      '--address',
      inject('temporalAddress'),
    ]);
    const result = (await handle.result()) as RestoreDatabaseResult;
    expect(result).toMatchObject({
      outcome: 'rejected',
      decision: { approved: false, approver: 'alice', reason: 'wrong backup' },
    });
    expect(await counts('app')).toEqual(before);
    expect((await databases()).filter((d) => d.startsWith('app_'))).toEqual([]);
  });

  it('does nothing when nobody answers before the timeout', async () => {
    const before = await counts('app');
    const handle = await startRestore('timeout', '2 seconds');
    const result = (await handle.result()) as RestoreDatabaseResult;
    expect(result.outcome).toBe('timed-out');
    expect(await counts('app')).toEqual(before);
    expect((await databases()).filter((d) => d.startsWith('app_'))).toEqual([]);
  });

  it('ignores an approval without approver or reason', async () => {
    const handle = await startRestore('anonymous', '3 seconds');
    await handle.signal('approve', { approver: '', reason: '' });
    expect(((await handle.result()) as RestoreDatabaseResult).outcome).toBe('timed-out');
  });

  it('restores when approved (pgwarden approve), keeping the previous database', async () => {
    const before = await counts('app');
    const handle = await startRestore('approved');
    const cli = await execa(
      join(root, 'bin/pgwarden'),
      ['approve', handle.workflowId, '--approver', 'bob', '--reason', 'INC-42'],
      {
        env: { PGWARDEN_CONFIG: join(dir, 'config.json'), TEMPORAL_ADDRESS: inject('temporalAddress') },
      },
    );
    expect(cli.stdout).toBe(`approved ${handle.workflowId} as bob: INC-42`);
    const result = (await handle.result()) as RestoreDatabaseResult;
    expect(result).toMatchObject({
      outcome: 'restored',
      previousDatabase: expect.stringMatching(KEPT),
      decision: { approved: true, approver: 'bob' },
    });
    firstKept = result.previousDatabase!;
    // The live database holds the backup's rows again; the modified one survives, renamed.
    expect(await counts('app')).toEqual([{ users: '20000', orders: '15000' }]);
    expect(await counts(firstKept)).toEqual(before);
    expect((await databases()).filter((d) => d.startsWith('app'))).toEqual(['app', firstKept]);
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(join(dir, 'hooks.log'), 'utf8')).toBe('stop app\nstart app\n');
  });

  it('restores the same backup a second time: the row written since is gone, both kept copies exist', async () => {
    await cluster.query(`INSERT INTO users (id, email) VALUES (999999, 'after-first-restore@example.com')`, 'app');
    // The same workflow id again, as `pgwarden restore --backup-id` gives it: a new run of it.
    const handle = await startRestore('approved');
    await handle.signal('approve', { approver: 'bob', reason: 'INC-43: again' });
    const result = (await handle.result()) as RestoreDatabaseResult;
    expect(result).toMatchObject({ outcome: 'restored', previousDatabase: expect.stringMatching(KEPT) });
    expect(result.previousDatabase).not.toBe(firstKept);
    expect(await counts('app')).toEqual([{ users: '20000', orders: '15000' }]);
    expect(await cluster.query(`SELECT email FROM users WHERE id = 999999`, 'app')).toEqual([]);
    expect(await cluster.query(`SELECT email FROM users WHERE id = 999999`, result.previousDatabase)).toEqual([
      { email: 'after-first-restore@example.com' },
    ]);
    expect((await databases()).filter((d) => d.startsWith('app'))).toEqual([
      'app',
      ...[firstKept, result.previousDatabase!].sort(),
    ]);
  });

  it('fails naming the obstacle when the live database cannot be kept under its name, leaving it as it was', async () => {
    await cluster.query(`INSERT INTO users (id, email) VALUES (999998, 'live@example.com')`, 'app');
    const handle = await startRestore('obstacle');
    // Someone (or something) took the name the live database is to be kept as.
    const kept = /kept as (\S+)\./.exec((await handle.query<Progress>('progress')).detail ?? '')?.[1];
    expect(kept).toMatch(KEPT);
    await cluster.query(`CREATE DATABASE ${kept}`);
    await handle.signal('approve', { approver: 'bob', reason: 'INC-44' });
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = ((err as WorkflowFailedError).cause as ActivityFailure).cause as ApplicationFailure;
    expect(cause).toMatchObject({ type: 'RestoreFailed', nonRetryable: true });
    expect(cause.message).toContain(
      `cannot keep "app" as "${kept}": a database of that name exists already; nothing was swapped`,
    );
    expect(await cluster.query(`SELECT email FROM users WHERE id = 999998`, 'app')).toEqual([
      { email: 'live@example.com' },
    ]);
    // The half-made copy is dropped; the database that was in the way is not pgwarden's to drop.
    expect((await databases()).filter((d) => d.startsWith('app_restore_'))).toEqual([]);
    await cluster.query(`DROP DATABASE ${kept}`);
  });

  it('restores single tables into a scratch database without touching the live one or asking', async () => {
    await cluster.query('DELETE FROM orders; DELETE FROM users WHERE id > 100', 'app');
    const result = (await env.client.workflow.execute('restoreDatabase', {
      taskQueue: queue,
      workflowId: `${queue}/tables`,
      args: [{ cluster: 'main', database: 'app', backupId: BACKUP, tables: ['users'] }],
    })) as RestoreDatabaseResult;
    expect(result).toMatchObject({
      outcome: 'tables-restored',
      tablesDatabase: expect.stringMatching(/^app_restore_20261122t020000z_[0-9a-f]{6}$/),
    });
    const [{ n }] = (await cluster.query<{ n: string }>('SELECT count(*) AS n FROM users', result.tablesDatabase)) as [
      { n: string },
    ];
    expect(n).toBe('20000');
    const tables = await cluster.query<{ t: string }>(
      `SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'`,
      result.tablesDatabase,
    );
    expect(tables).toEqual([{ t: 'users' }]);
    expect(await counts('app')).toEqual([{ users: '100', orders: '0' }]);
    await cluster.query(`DROP DATABASE ${result.tablesDatabase}`);
  });

  it('refuses to approve a workflow that is not waiting, in one line', async () => {
    const r = await execa(
      join(root, 'bin/pgwarden'),
      ['approve', `${queue}/approved`, '--approver', 'bob', '--reason', 'again'],
      {
        env: { PGWARDEN_CONFIG: join(dir, 'config.json'), TEMPORAL_ADDRESS: inject('temporalAddress') },
        reject: false,
      },
    );
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe(`pgwarden: ${queue}/approved is not waiting for approval (step: done)`);
  });
});

describe('swapDatabases, attempt by attempt', () => {
  // The swap activity itself, as a retry finds the cluster after an attempt died at each point.
  const swap = () => createRestoreActivities({ config, env: testSecrets(cluster, key) }).swapDatabases;
  const names = restoreNames('swapme', BACKUP, '00000000-0000-7000-8000-00000000abcd');
  const plan = {
    cluster: 'main',
    database: 'swapme',
    backupId: BACKUP,
    restoreCluster: 'main',
    scratchDatabase: names.restoreDatabase,
    ...names,
  };
  const swapDatabases = () => databases().then((all) => all.filter((d) => d.startsWith('swapme')));
  const marker = async (db: string) => (await cluster.query<{ v: string }>('SELECT v FROM marker', db))[0]!.v;

  it('finishes from each state an earlier attempt can leave, and reports what it kept', async () => {
    for (const [db, v] of [
      ['swapme', 'live'],
      [names.restoreDatabase, 'restored'],
    ] as const) {
      await cluster.query(`CREATE DATABASE ${db}`);
      await cluster.query(`CREATE TABLE marker (v text); INSERT INTO marker VALUES ('${v}')`, db);
    }
    // An attempt died after the first rename (and before allowing connections again).
    await cluster.query(`ALTER DATABASE swapme RENAME TO ${names.preRestoreDatabase}`);
    await cluster.query(`ALTER DATABASE ${names.preRestoreDatabase} ALLOW_CONNECTIONS false`);
    expect(await swap()(plan)).toEqual({ previousDatabase: names.preRestoreDatabase });
    expect(await marker('swapme')).toBe('restored');
    expect(await marker(names.preRestoreDatabase)).toBe('live');
    // An attempt died after both renames: the next one finds the work done.
    expect(await swap()(plan)).toEqual({ previousDatabase: names.preRestoreDatabase });
    expect(await swapDatabases()).toEqual(['swapme', names.preRestoreDatabase]);
  });

  const oidOf = async (db: string) =>
    Number(
      (await cluster.query<{ oid: string }>(`SELECT oid::text AS oid FROM pg_database WHERE datname = '${db}'`))[0]!
        .oid,
    );

  it('fails, naming what is missing, when the restored copy is gone, nothing was kept and the live database is not the restored copy', async () => {
    await cluster.query(`DROP DATABASE ${names.preRestoreDatabase}`);
    const other = { ...plan, restoredOid: (await oidOf('swapme')) + 1 };
    for (const p of [plan, other]) {
      await expect(swap()(p)).rejects.toThrow(
        `the restored database "${names.restoreDatabase}" does not exist and "${names.preRestoreDatabase}" was never made; "swapme" is untouched`,
      );
    }
    expect(await marker('swapme')).toBe('restored');
  });

  it('puts the restored copy in place when there is no live database (it was dropped), keeping nothing; a retry finds its work done', async () => {
    await cluster.query(`ALTER DATABASE swapme RENAME TO ${names.restoreDatabase}`);
    const withOid = { ...plan, restoredOid: await oidOf(names.restoreDatabase) };
    expect(await swap()(withOid)).toEqual({});
    expect(await swapDatabases()).toEqual(['swapme']);
    // The attempt died before reporting: the retry sees the restored copy under the live name, nothing kept.
    expect(await swap()(withOid)).toEqual({});
    expect(await swapDatabases()).toEqual(['swapme']);
    expect(await marker('swapme')).toBe('restored');
    await cluster.query('DROP DATABASE swapme');
  });
});

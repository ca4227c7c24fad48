// createStandby against a real PostgreSQL 15 primary archiving through `pgwarden wal-push` and the
// real Temporal dev server: a base backup in the repository, rows written after it (some archived,
// some only in the primary's WAL); createStandby into an empty directory gives a standby that
// streams under its name and has every row, later ones included; a directory that is not empty
// waits for approval, and a rejection leaves it exactly as it was.
import { mkdir, readdir, chown, writeFile, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CreateStandbyResult } from '../../src/workflows/createStandby.js';
import { startArchivingCluster, switchAndArchive, type ArchivingSetup } from '../helpers/archiving.js';
import { testSecrets } from '../helpers/config.js';
import { waitForStep } from '../helpers/pitr.js';
import { runFailure } from '../helpers/workflowRuns.js';
import { freePort } from '../helpers/ports.js';
import { PG_BIN } from '../helpers/require.js';
import { waitStreaming } from '../helpers/standby.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

let setup: ArchivingSetup;
let env: TestWorkflowEnvironment;
let worker: RunningWorker;
const queue = uniqueQueue('standby');
const isRoot = process.getuid?.() === 0;
let replica1: string;
let replica2: string;
let replica3: string;
let port1: number;
let spoolBase: string;

/** A directory owned by the PostgreSQL user, 0700, as an operator prepares one. */
async function postgresDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (isRoot) {
    const uid = Number((await execa('id', ['-u', 'postgres'])).stdout);
    await chown(dir, uid, uid === 0 ? 0 : Number((await execa('id', ['-g', 'postgres'])).stdout));
  }
}

async function onStandby<T extends pg.QueryResultRow>(sql: string): Promise<T[]> {
  const c = setup.cluster;
  const client = new pg.Client({ host: '127.0.0.1', port: port1, user: c.user, password: c.password, database: 'app' });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  env = await testEnvironment();
  // Prefetching on: restore_command is bin/pgwarden-wal-get, which hands what is not spooled to pgwarden wal-get.
  spoolBase = join(tmpdir(), `pgwarden-standby-spool-${process.pid}`);
  setup = await startArchivingCluster({
    taskQueue: queue,
    extra: { walGet: { async: true, spoolDirectory: spoolBase } },
  });
  replica1 = join(setup.dir, 'standbys/replica1');
  replica2 = join(setup.dir, 'standbys/replica2');
  await postgresDir(replica1); // empty: a new host's
  await postgresDir(replica2);
  await writeFile(join(replica2, 'PG_VERSION'), '15\n'); // something an operator may still need
  replica3 = join(setup.dir, 'standbys/replica3');
  await postgresDir(replica3);
  await writeFile(join(replica3, 'PG_VERSION'), '15\n');
  await postgresDir(dirname(replica1));
  port1 = await freePort();
  setup.config.clusters.main!.standbys = [
    { name: 'replica1', host: '127.0.0.1', port: port1, dataDirectory: replica1 },
    { name: 'replica2', host: '127.0.0.1', port: await freePort(), dataDirectory: replica2 },
    // Its port is replica1's (taken once that one runs): its server cannot start, and replica1,
    // streaming at that address, must not pass for it.
    { name: 'replica3', host: '127.0.0.1', port: port1, dataDirectory: replica3 },
    { name: 'primary-address', host: '127.0.0.1', port: setup.cluster.port, dataDirectory: replica3 },
  ];
  await setup.cluster.query('CREATE DATABASE app');
  await setup.cluster.query('CREATE TABLE items (id serial PRIMARY KEY, batch text NOT NULL)', 'app');
  // restore_command names the worker's config file (pgwarden worker --config sets it the same way).
  worker = await startPgwardenWorker(env, setup.config, {
    ...testSecrets(setup.cluster),
    PGWARDEN_CONFIG: setup.configFile,
  });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  const pgCtl = [join(PG_BIN, 'pg_ctl'), '-D', replica1, 'stop', '-m', 'immediate', '-w'];
  if (replica1)
    await execa(isRoot ? 'runuser' : pgCtl[0]!, isRoot ? ['-u', 'postgres', '--', ...pgCtl] : pgCtl.slice(1), {
      reject: false,
    });
  await setup?.remove();
  const { pid } = JSON.parse(await readFile(join(spoolBase, 'main', 'fetcher.pid'), 'utf8').catch(() => '{}')) as {
    pid?: number;
  };
  if (pid) process.kill(pid, 'SIGKILL');
  await rm(spoolBase, { recursive: true, force: true });
});

it('builds a streaming standby from the repository into an empty directory, with every row', async () => {
  await setup.cluster.query(`INSERT INTO items (batch) SELECT 'before' FROM generate_series(1, 100)`, 'app');
  await env.client.workflow.execute('baseBackup', {
    taskQueue: queue,
    workflowId: `${queue}/base`,
    args: [{ cluster: 'main', backupId: '20261122T030000Z' }],
  });
  // After the backup: some reach the archive, the last ones only the primary's current WAL.
  await setup.cluster.query(`INSERT INTO items (batch) SELECT 'archived' FROM generate_series(1, 50)`, 'app');
  await switchAndArchive(setup.cluster);
  await setup.cluster.query(`INSERT INTO items (batch) SELECT 'unarchived' FROM generate_series(1, 25)`, 'app');

  const handle = await env.client.workflow.start('createStandby', {
    taskQueue: queue,
    workflowId: `${queue}/replica1`,
    args: [{ cluster: 'main', standby: 'replica1', streamTimeout: '2 minutes' }],
  });
  const result = (await handle.result()) as CreateStandbyResult;
  expect(result).toMatchObject({ outcome: 'streaming', standby: 'replica1', backupId: '20261122T030000Z' });
  expect(result.streaming).toMatchObject({ streaming: true, receiverStatus: 'streaming', senderState: 'streaming' });
  expect(result.steps.map((s) => s.step)).toEqual(['plan', 'stage', 'swap', 'start', 'stream']); // no approval
  await waitStreaming(setup.cluster, 'replica1', 5_000);

  // Written after it streams: replication, not the archive, brings them.
  await setup.cluster.query(`INSERT INTO items (batch) SELECT 'streamed' FROM generate_series(1, 10)`, 'app');
  const streamed = async () =>
    (await onStandby<{ n: number }>(`SELECT count(*)::int AS n FROM items WHERE batch = 'streamed'`))[0]!.n;
  const until = Date.now() + 30_000;
  while ((await streamed()) < 10) {
    if (Date.now() > until) throw new Error('the standby did not get the rows written after it streamed in 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  const counts = await onStandby<{ batch: string; n: number }>(
    'SELECT batch, count(*)::int AS n FROM items GROUP BY batch ORDER BY batch',
  );
  expect(counts).toEqual([
    { batch: 'archived', n: 50 },
    { batch: 'before', n: 100 },
    { batch: 'streamed', n: 10 },
    { batch: 'unarchived', n: 25 },
  ]);
  expect((await onStandby<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(true);
  // The password is in a passfile beside the data directory (the server's user's, 0600), not in the settings.
  const auto = await readFile(join(replica1, 'postgresql.auto.conf'), 'utf8');
  const restore = /^restore_command = (.*)$/m.exec(auto)?.[1] ?? '';
  expect(restore).toMatch(/pgwarden-wal-get.*--config.*--cluster.*main.*--spool.*%f %p'$/);
  expect(restore).toContain(join(spoolBase, 'main'));
  expect(auto).not.toContain(setup.cluster.password);
  expect(await readdir(dirname(replica1))).toEqual(
    expect.arrayContaining(['replica1', 'replica1.pgpass', 'replica1.log']),
  );
  expect((await readdir(dirname(replica1))).filter((f) => f.includes('pgwarden-standby'))).toEqual([]);
  // It caught up through `pgwarden wal-get` before it streamed: the segment archived after the backup.
  expect(await readFile(`${replica1}.log`, 'utf8')).toMatch(/restored log file "[0-9A-F]{24}" from archive/);
}, 180_000);

it('a directory that is not empty waits for approval; a rejection leaves it as it was', async () => {
  const handle = await env.client.workflow.start('createStandby', {
    taskQueue: queue,
    workflowId: `${queue}/replica2`,
    args: [{ cluster: 'main', standby: 'replica2' }],
  });
  const progress = await waitForStep(handle, 'approve');
  expect(progress.detail).toContain(`${replica2} is not empty`);
  await handle.signal('reject', { approver: 'bob', reason: 'replica2 still holds what we need' });
  const result = (await handle.result()) as CreateStandbyResult;
  expect(result).toMatchObject({ outcome: 'rejected', decision: { approved: false, approver: 'bob' } });
  expect(await readdir(replica2)).toEqual(['PG_VERSION']);
  expect(await readFile(join(replica2, 'PG_VERSION'), 'utf8')).toBe('15\n');
  const beside = (await readdir(dirname(replica2))).filter((f) => f.startsWith('replica2'));
  expect(beside).toEqual(['replica2']); // no staged copy, no aside directory, no passfile
}, 120_000);

it('approved, a standby that cannot start is rolled back: the directory as it was, the failed one kept', async () => {
  const handle = await env.client.workflow.start('createStandby', {
    taskQueue: queue,
    workflowId: `${queue}/replica3`,
    args: [{ cluster: 'main', standby: 'replica3', streamTimeout: '1 minute' }],
  });
  await waitForStep(handle, 'approve');
  await handle.signal('approve', { approver: 'alice', reason: 'rebuild replica3' });
  const failure = await runFailure(handle);
  expect(failure.message).toMatch(/rolled back: .*stopped.*is back as it was; the failed standby is kept as/);
  expect(await readdir(replica3)).toEqual(['PG_VERSION']);
  const beside = (await readdir(dirname(replica3))).filter((f) => f.startsWith('replica3')).sort();
  expect(beside).toEqual(['replica3', expect.stringMatching(/^replica3\.failed-standby-/), 'replica3.log']); // the passfile this run wrote (the replication password) went with the rollback
  await waitStreaming(setup.cluster, 'replica1', 5_000); // replica1 runs on
}, 120_000);

it("refuses a standby at the primary's own address before touching anything", async () => {
  const handle = await env.client.workflow.start('createStandby', {
    taskQueue: queue,
    workflowId: `${queue}/primary-address`,
    args: [{ cluster: 'main', standby: 'primary-address' }],
  });
  expect((await runFailure(handle)).message).toMatch(
    /has the primary's address, 127\.0\.0\.1:\d+: give it its own port/,
  );
  expect(await readdir(replica3)).toEqual(['PG_VERSION']);
}, 60_000);

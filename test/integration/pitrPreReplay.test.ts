// An in-place PITR replays before the approval: the staged copy is recovered to T in the work
// directory on its own loopback port while the live cluster runs on untouched, and shut down at T.
// After the approval the start replays only from that replay's restartpoint (a checkpoint after
// a few MB of WAL) to T: the server's own log says where each start's redo began. The row committed
// right before T is there afterwards, the one right after it is not.
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseLsn } from '../../src/lib/wal.js';
import type { Progress } from '../../src/workflows/messages.js';
import type { PointInTimeRecoveryResult } from '../../src/workflows/pointInTimeRecovery.js';
import { startArchivingCluster, switchAndArchive, type ArchivingSetup } from '../helpers/archiving.js';
import { testSecrets } from '../helpers/config.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { activityAttempts, IN_PLACE_STEPS, ownQueues, waitForStep } from '../helpers/pitr.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';
import { spawnWorker } from '../helpers/workerProcess.js';

let setup: ArchivingSetup;
let key: TestKey;
let env: TestWorkflowEnvironment;
let worker: RunningWorker;
const queue = uniqueQueue('pitr-prereplay');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const q = <T extends Record<string, unknown>>(sql: string) => setup.cluster.query<T>(sql, 'app');
const tags = async () => (await q<{ tag: string }>('SELECT tag FROM rows ORDER BY id')).map((r) => r.tag);
/** Whether anything accepts connections on 127.0.0.1:`port`. */
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
const workDirectory = async () => {
  const dir = join(setup.cluster.dataDir, '..');
  const name = (await readdir(dir)).find((f) => f.includes('pgwarden-pitr-'));
  return name ? join(dir, name) : undefined;
};
const live = async () =>
  (
    await q<{ tli: number; rec: boolean; port: string }>(
      `SELECT (SELECT timeline_id FROM pg_control_checkpoint()) AS tli, pg_is_in_recovery() AS rec, current_setting('port') AS port`,
    )
  )[0]!;

beforeAll(async () => {
  [key, env] = await Promise.all([createTestKey(), testEnvironment()]);
  setup = await startArchivingCluster({ taskQueue: queue, key });
  await setup.cluster.query('CREATE DATABASE app');
  await q(`CREATE TABLE rows (id serial PRIMARY KEY, tag text NOT NULL); CREATE TABLE filler (x int, pad text)`);
  worker = await startPgwardenWorker(env, setup.config, testSecrets(setup.cluster, key));
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await Promise.all([setup?.remove(), key?.remove()]);
});

it('replays to T before the approval; after it, only from the restartpoint: the row before T is there, the one after is not', async () => {
  await env.client.workflow.execute('baseBackup', {
    taskQueue: queue,
    workflowId: `${queue}/base`,
    args: [{ cluster: 'main', backupId: '20261122T030000Z' }],
  });
  // A few MB of WAL, then a checkpoint: the replay before the approval makes its restartpoint there.
  // PGWARDEN_PREREPLAY_ROWS: more WAL, to measure the downtime (docs/procedures.md).
  const rows = Number(process.env.PGWARDEN_PREREPLAY_ROWS ?? 40000);
  await q(`INSERT INTO filler SELECT g, md5(g::text) || repeat('x', 168) FROM generate_series(1, ${rows}) g`);
  await q('CHECKPOINT');
  await q(`INSERT INTO rows (tag) VALUES ('before')`);
  await sleep(1100);
  const [{ t }] = (await q<{ t: string }>(
    `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t`,
  )) as [{ t: string }];
  await sleep(1100);
  await q(`INSERT INTO rows (tag) VALUES ('after')`);
  await switchAndArchive(setup.cluster);

  const handle = await env.client.workflow.start('pointInTimeRecovery', {
    taskQueue: queue,
    workflowId: `${queue}/pitr`,
    args: [{ cluster: 'main', target: { time: t } }],
  });
  await waitForStep(handle, 'approve');
  const waiting = await handle.query<Progress>('progress');
  // The live cluster ran on, untouched, while its copy was replayed beside it.
  expect(await live()).toMatchObject({ tli: 1, rec: false, port: String(setup.cluster.port) });
  expect(await tags()).toEqual(['before', 'after']);
  const approvedAt = Date.now();
  await handle.signal('approve', { approver: 'alice', reason: 'pre-replay' });
  const result = (await handle.result()) as PointInTimeRecoveryResult;
  const downtime = (Date.now() - approvedAt) / 1000;
  const seconds = Object.fromEntries(result.steps.map((s) => [s.step, s.seconds]));
  console.log(
    `in-place PITR approve→done ${downtime.toFixed(1)} s; steps ${JSON.stringify(seconds)}; replayed before the approval ${JSON.stringify(result.preReplay)}; after it from ${result.recovery?.redoStart}`,
  );

  expect(await tags()).toEqual(['before']);
  expect(await live()).toMatchObject({ tli: 2, rec: false });
  expect(result.steps.map((s) => s.step)).toEqual(IN_PLACE_STEPS);
  const pre = result.preReplay!;
  expect(waiting.detail).toContain(`Replayed already, while main kept running`);
  expect(waiting.detail).toMatch(/main will be down about \d+ s after the approval/);
  expect(pre.stoppedAt).toMatch(/recovery stopping before commit of transaction/);
  // The start after the approval began at the replay's restartpoint, past where the first began,
  // and replayed less than the replay before the approval did.
  expect(parseLsn(pre.restartLsn)).toBeGreaterThan(parseLsn(pre.redoStart) + 4n * 1024n * 1024n);
  expect(result.recovery!.redoStart).toBe(pre.restartLsn);
  expect(pre.remainingBytes).toBeLessThan(pre.replayedBytes / 4);
  // The kept recovery log says so in the server's own words, both starts.
  const dir = join(setup.cluster.dataDir, '..');
  const logName = (await readdir(dir)).find((f) => /\.pitr-.*\.log$/.test(f))!;
  const log = await readFile(join(dir, logName), 'utf8');
  const starts = [...log.matchAll(/redo starts at ([0-9A-F]+\/[0-9A-F]+)/g)].map((m) => m[1]);
  expect(starts).toEqual([pre.redoStart, pre.restartLsn]);
  expect(log).toMatch(/shutdown at recovery target/);
  // The recovered cluster keeps none of the scratch server's overrides, nor the recovery settings.
  const conf = await readFile(join(setup.cluster.dataDir, 'postgresql.auto.conf'), 'utf8');
  expect(conf).toMatch(/shared_buffers = '?64MB/);
  expect(conf).not.toMatch(/lc_messages|huge_pages|primary_conninfo|recovery_target|restore_command|128MB/);
  expect(conf).toMatch(new RegExp(`^port = '?${setup.cluster.port}'?$`, 'm'));
}, 300_000);

it('a worker killed while the copy replays before the approval: the next attempt picks the replay up, the run waits for approval, a rejection leaves nothing', async () => {
  // More WAL, so that the scratch server is still replaying when the worker dies.
  await q(`INSERT INTO filler SELECT g, md5(g::text) || repeat('x', 168) FROM generate_series(1, 400000) g`);
  await q(`INSERT INTO rows (tag) VALUES ('later')`);
  await switchAndArchive(setup.cluster);
  const crashQueue = uniqueQueue('pitr-prereplay-crash');
  const config = ownQueues(setup.config, crashQueue);
  const configFile = join(setup.dir, 'crash.json');
  const secrets = testSecrets(setup.cluster, key);
  const first = await spawnWorker(configFile, config, secrets);
  const handle = await env.client.workflow.start('pointInTimeRecovery', {
    taskQueue: crashQueue,
    workflowId: `${crashQueue}/pitr`,
    args: [{ cluster: 'main', target: { latest: true } }],
  });
  await waitForStep(handle, 'pre-replay');
  const work = (await workDirectory())!;
  const deadline = Date.now() + 60_000;
  while (!existsSync(join(work, 'data/postmaster.pid')) && Date.now() < deadline) await sleep(100);
  await first.kill('SIGKILL');
  const second = await spawnWorker(configFile, config, secrets);
  try {
    await waitForStep(handle, 'approve', 180_000);
    expect(await activityAttempts(handle, 'preReplay')).toEqual([2]);
    expect((await handle.query<Progress>('progress')).detail).toContain('Replayed already');
    // The second attempt followed the server the first one started: one start, one redo in its log.
    const preLog = await readFile(join(work, 'pre-replay.log'), 'utf8');
    expect(preLog.match(/redo starts at/g)).toHaveLength(1);
    expect(preLog.match(/starting PostgreSQL/g)).toHaveLength(1);
    const { port } = JSON.parse(await readFile(join(work, 'PRE-REPLAY'), 'utf8')) as { port: number };
    await handle.signal('reject', { approver: 'alice', reason: 'drill' });
    expect(await handle.result()).toMatchObject({ outcome: 'rejected' });
    // Nothing is left running on the scratch port.
    expect(await listening(port)).toBe(false);
  } finally {
    await second.kill('SIGTERM');
  }
  expect(await live()).toMatchObject({ tli: 2, rec: false, port: String(setup.cluster.port) });
  expect(await tags()).toEqual(['before', 'later']);
  expect(existsSync(work)).toBe(false);
}, 300_000);

it('a backup whose configuration names the live cluster as its primary: the replay to latest before the approval never streams from it', async () => {
  // As a backup of a standby (or of a cluster createStandby built) carries: primary_conninfo to the live primary.
  const c = setup.cluster;
  await c.query(
    `ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=${c.port} user=${c.user} password=${c.password} application_name=pgwarden_scratch'`,
  );
  await c.query('SELECT pg_reload_conf()');
  try {
    await env.client.workflow.execute('baseBackup', {
      taskQueue: queue,
      workflowId: `${queue}/base-conninfo`,
      args: [{ cluster: 'main' }],
    });
    await q(`INSERT INTO rows (tag) VALUES ('streamed?')`);
    await switchAndArchive(c);
    const handle = await env.client.workflow.start('pointInTimeRecovery', {
      taskQueue: queue,
      workflowId: `${queue}/pitr-conninfo`,
      args: [{ cluster: 'main', target: { latest: true } }],
    });
    // Watched from the live side the whole time the copy replays, until the approval waits.
    const senders: unknown[] = [];
    for (const deadline = Date.now() + 180_000; ;) {
      senders.push(...(await c.query(`SELECT application_name, state FROM pg_stat_replication`)));
      if ((await handle.query<Progress>('progress')).step === 'approve') break;
      if (Date.now() > deadline) throw new Error('never reached approve');
      await sleep(50);
    }
    const preLog = await readFile(join((await workDirectory())!, 'pre-replay.log'), 'utf8');
    expect(senders).toEqual([]);
    expect(preLog).not.toMatch(/streaming WAL from primary|could not connect to the primary/);
    await handle.signal('reject', { approver: 'alice', reason: 'conninfo' });
    expect(await handle.result()).toMatchObject({ outcome: 'rejected' });
  } finally {
    await c.query('ALTER SYSTEM RESET primary_conninfo');
    await c.query('SELECT pg_reload_conf()');
  }
  expect(await live()).toMatchObject({ tli: 2, rec: false, port: String(setup.cluster.port) });
}, 300_000);

// promoteStandby (through `pgwarden standby promote` where an operator would type it) against a
// real PostgreSQL 15 primary archiving through `pgwarden wal-push`, a real streaming standby
// (pg_basebackup -R, which copies the primary's archive_command) and the real Temporal dev
// server: a standby behind the archive (replay paused while the primary wrote and
// archived more) is refused in plan with nothing touched; with the primary up the approval warns of
// split brain, a second promotion in the cluster cannot start while it waits, and a rejection
// leaves the standby in recovery; a standby promoted while the primary ran is warned of in every
// later approval; approved while the primary was down but it started again before the approval:
// promote's second look refuses, nothing done; with the primary stopped (the disaster) the approved
// standby is promoted, accepts writes, has the primary's last committed row,
// its archiving puts the new timeline's history file and the old timeline's last, partial segment
// into the same archive, and the promotion run again finds its work done.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { createActivities } from '../../src/activities/index.js';
import type { PromoteStandbyResult } from '../../src/workflows/promoteStandby.js';
import { PGWARDEN, startArchivingCluster, switchAndArchive, type ArchivingSetup } from '../helpers/archiving.js';
import { testSecrets } from '../helpers/config.js';
import { waitForStep } from '../helpers/pitr.js';
import { PG_BIN } from '../helpers/require.js';
import { startStandby, waitStreaming, type TestStandby } from '../helpers/standby.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';
import { runFailure } from '../helpers/workflowRuns.js';

let setup: ArchivingSetup;
let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let standby: TestStandby;
let replica2: TestStandby;
const queue = uniqueQueue('promote');
const isRoot = process.getuid?.() === 0;

const inRecovery = async () => (await standby.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r;
const start = (id: string, extra: Record<string, unknown> = {}) =>
  env.client.workflow.start('promoteStandby', {
    taskQueue: queue,
    workflowId: `${queue}/${id}`,
    args: [{ cluster: 'main', standby: 'replica1', catchUpTimeout: '20 seconds', ...extra }],
  });

/** The CLI as an operator runs it, against the test's Temporal and this config (which lists the standby). */
function pgwarden(...args: string[]) {
  return execa(PGWARDEN, ['--config', join(setup.dir, 'cli.json'), ...args], {
    env: { PGWARDEN_FROM_SOURCE: '1', TEMPORAL_ADDRESS: inject('temporalAddress') },
    stdin: 'ignore',
    reject: false,
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  env = await testEnvironment();
  setup = await startArchivingCluster({ taskQueue: queue });
  await setup.cluster.query('CREATE TABLE items (id serial PRIMARY KEY, batch text NOT NULL)');
  await setup.cluster.query(`INSERT INTO items (batch) SELECT 'first' FROM generate_series(1, 100)`);
  await switchAndArchive(setup.cluster);
  standby = await startStandby(setup.cluster, 'replica1');
  replica2 = await startStandby(setup.cluster, 'replica2');
  // Promoted while the primary runs on, it must not archive a timeline 2 of its own into the cluster's archive.
  await replica2.query(`ALTER SYSTEM SET archive_command = 'true'`);
  await replica2.query('SELECT pg_reload_conf()');
  setup.config.clusters.main!.standbys = [
    { name: 'replica1', host: standby.host, port: standby.port },
    { name: 'replica2', host: replica2.host, port: replica2.port },
  ];
  await writeFile(join(setup.dir, 'cli.json'), JSON.stringify(setup.config));
  worker = await startPgwardenWorker(env, setup.config, testSecrets(setup.cluster));
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await standby?.remove();
  await replica2?.remove();
  await setup?.remove();
});

it('a standby behind the archive (replay paused) is refused in plan; nothing is touched', async () => {
  await standby.query('SELECT pg_wal_replay_pause()');
  await setup.cluster.query(`INSERT INTO items (batch) SELECT 'unreplayed' FROM generate_series(1, 50)`);
  const archived = await switchAndArchive(setup.cluster);
  const began = Date.now();
  const cli = await pgwarden('standby', 'promote', '--cluster', 'main', '--standby', 'replica1');
  expect(Date.now() - began).toBeLessThan(20_000); // a paused replay is not waited for
  expect(cli.exitCode).toBe(1);
  expect(cli.stdout).toMatch(/^started promoteStandby pgwarden\/main\/promote$/);
  const failure = { message: String(cli.stderr) };
  expect(failure.message.split('\n')).toHaveLength(1);
  expect(failure.message).toMatch(
    new RegExp(
      `MiB \\(1 segment\\) behind the archive: replayed to [0-9A-F/]+, the archive ends at [0-9A-F/]+ \\(${archived}\\); replay is paused`,
    ),
  );
  expect(failure.message).toContain('nothing was touched');
  expect(await inRecovery()).toBe(true);
  expect((await standby.query<{ p: boolean }>('SELECT pg_is_wal_replay_paused() AS p'))[0]!.p).toBe(true); // as the operator left it
  expect(
    (await standby.query<{ n: number }>(`SELECT count(*)::int AS n FROM items WHERE batch = 'unreplayed'`))[0]!.n,
  ).toBe(0);
  await standby.query('SELECT pg_wal_replay_resume()');
}, 60_000);

it('with the primary up, the approval warns of split brain; a rejection leaves the standby in recovery', async () => {
  const cli = await pgwarden('standby', 'promote', '--cluster', 'main', '--standby', 'replica1');
  expect(cli.exitCode).toBe(0);
  expect(cli.stdout).toMatch(/would: WARNING: THE PRIMARY .* IS UP/);
  const workflowId = /started promoteStandby (\S+)/.exec(cli.stdout)![1]!;
  expect(cli.stdout).toContain(`it waits for approval: pgwarden approve ${workflowId} --approver NAME --reason TEXT`);
  const handle = env.client.workflow.getHandle(workflowId);
  const progress = await waitForStep(handle, 'approve', 60_000);
  expect(progress.detail).toMatch(
    /^WARNING: THE PRIMARY 127\.0\.0\.1:\d+ IS UP AND NOT IN RECOVERY: promoting makes two primaries \(split brain\)/,
  );
  // One promotion per cluster at a time, whichever standby.
  const second = await pgwarden('standby', 'promote', '--cluster', 'main', '--standby', 'replica2');
  expect(second.exitCode).toBe(1);
  expect(second.stderr).toMatch(
    /a promotion of cluster "main" is running already \(pgwarden\/main\/promote\): one at a time/,
  );
  expect((await handle.describe()).status.name).toBe('RUNNING');
  expect(progress.detail).toMatch(/caught up to the archive/);
  expect((await pgwarden('reject', workflowId, '--approver', 'bob', '--reason', 'db1 is still up')).exitCode).toBe(0);
  const result = (await handle.result()) as PromoteStandbyResult;
  expect(result).toMatchObject({ outcome: 'rejected', decision: { approved: false, approver: 'bob' } });
  expect(result.promoted).toBeUndefined();
  expect(await inRecovery()).toBe(true);
  const rows = await setup.cluster.query<{ state: string }>(
    `SELECT state FROM pg_stat_replication WHERE application_name = 'replica1'`,
  );
  expect(rows[0]?.state).toBe('streaming');
}, 90_000);

it('allowBehindArchive: the approval says what is lost; promoted, a paused standby replays what it received first', async () => {
  await replica2.query('SELECT pg_wal_replay_pause()');
  await setup.cluster.query(`INSERT INTO items (batch) SELECT 'while replica2 paused' FROM generate_series(1, 20)`);
  await switchAndArchive(setup.cluster);
  const handle = await env.client.workflow.start('promoteStandby', {
    taskQueue: queue,
    workflowId: `${queue}/allowed`,
    args: [{ cluster: 'main', standby: 'replica2', allowBehindArchive: true }],
  });
  const progress = await waitForStep(handle, 'approve', 60_000);
  expect(progress.detail).toMatch(
    /OF ARCHIVED WAL \(1 segment, from [0-9A-F/]+ to [0-9A-F/]+\) IS NOT ON THE NEW PRIMARY/,
  );
  expect(progress.detail).toMatch(/Note: replay is paused at [0-9A-F/]+: promotion resumes it/);
  await handle.signal('approve', { approver: 'alice', reason: 'test: a paused standby' });
  const result = (await handle.result()) as PromoteStandbyResult;
  expect(result).toMatchObject({ outcome: 'promoted', promoted: { timeline: 2, already: false } });
  expect(result.plan.behindBytes).toBeGreaterThan(0);
  const rows = await replica2.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM items WHERE batch = 'while replica2 paused'`,
  );
  expect(rows[0]!.n).toBe(20); // received while paused, replayed before the promotion ended recovery
  expect((await replica2.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
}, 90_000);

const pgCtl = (...args: string[]) => {
  const cmd = [join(PG_BIN, 'pg_ctl'), '-D', setup.cluster.dataDir, ...args];
  return execa(isRoot ? 'runuser' : cmd[0]!, isRoot ? ['-u', 'postgres', '--', ...cmd] : cmd.slice(1));
};

it('approved while the primary was down, but it started again before the approval: refused, nothing done', async () => {
  await pgCtl('-m', 'fast', '-w', 'stop');
  const handle = await start('restarted');
  const progress = await waitForStep(handle, 'approve', 60_000);
  expect(progress.detail).toMatch(/Note: the primary 127\.0\.0\.1:\d+ is unreachable/);
  // replica2, promoted in the test before while the primary ran: a second primary, warned of.
  expect(progress.detail).toMatch(
    /^WARNING: ANOTHER CONFIGURED STANDBY, replica2 \(127\.0\.0\.1:\d+\), ANSWERS AND IS NOT IN RECOVERY/,
  );
  expect(progress.detail).not.toContain('THE PRIMARY');
  await pgCtl('-l', join(dirname(setup.cluster.dataDir), 'server.log'), '-w', '-t', '60', 'start');
  await handle.signal('approve', { approver: 'alice', reason: 'INC-42: db1 is gone (it is not)' });
  const failure = await runFailure(handle);
  expect(failure.type).toBe('ApprovalStale');
  expect(failure.message).toMatch(
    /^not promoted: since the approval, THE PRIMARY 127\.0\.0\.1:\d+ IS UP AND NOT IN RECOVERY.*\(not in the approval\)\. Nothing done \(standby replica1 is still in recovery\); start again/,
  );
  expect(await inRecovery()).toBe(true);
  expect((await setup.cluster.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(false);
  // Streaming from it again before the disaster below stops it once more: a standby (without
  // restore_command) that missed the WAL of this restart would be behind the archive, and refused.
  await waitStreaming(setup.cluster, 'replica1');
}, 90_000);

it('the disaster: primary stopped, the caught-up standby approved, promoted, writable, with the last row', async () => {
  await setup.cluster.query(`INSERT INTO items (batch) VALUES ('last')`);
  const [{ lsn }] = (await setup.cluster.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')) as [
    { lsn: string },
  ];
  // A clean stop (the shutdown checkpoint reaches the standby too); its directory stays.
  await pgCtl('-m', 'fast', '-w', 'stop');

  const handle = await start('promoted');
  const progress = await waitForStep(handle, 'approve', 60_000);
  expect(progress.detail).not.toContain('THE PRIMARY');
  expect(progress.detail).toMatch(/^WARNING: ANOTHER CONFIGURED STANDBY, replica2 /); // promoted earlier: warned of
  expect(progress.detail).toMatch(/Note: the primary 127\.0\.0\.1:\d+ is unreachable/);
  expect(await inRecovery()).toBe(true); // nothing before the approval
  await handle.signal('approve', { approver: 'alice', reason: 'INC-42: db1 is gone' });
  const result = (await handle.result()) as PromoteStandbyResult;
  expect(result).toMatchObject({ outcome: 'promoted', plan: { timeline: 1, behindBytes: 0 } });
  expect(result.promoted).toMatchObject({ timeline: 2, already: false });
  expect(result.steps.map((s) => s.step)).toEqual(['plan', 'approve', 'promote']);
  expect(await inRecovery()).toBe(false);
  // The switch is after everything the primary wrote (its last row, its shutdown checkpoint).
  const history = await readFile(join(standby.dataDir, 'pg_wal/00000002.history'), 'utf8');
  expect(history).toContain(result.promoted!.switchLsn!);
  const [{ after }] = (await standby.query<{ after: boolean }>(
    `SELECT '${result.promoted!.switchLsn}'::pg_lsn > '${lsn}'::pg_lsn AS after`,
  )) as [{ after: boolean }];
  expect(after).toBe(true);
  await standby.query(`INSERT INTO items (batch) VALUES ('after promotion')`);
  const counts = await standby.query<{ batch: string; n: number }>(
    'SELECT batch, count(*)::int AS n FROM items GROUP BY batch ORDER BY batch',
  );
  expect(counts).toEqual([
    { batch: 'after promotion', n: 1 },
    { batch: 'first', n: 100 },
    { batch: 'last', n: 1 },
    { batch: 'unreplayed', n: 50 },
    { batch: 'while replica2 paused', n: 20 },
  ]);
  // Its archive_command (the primary's, copied by pg_basebackup) sends timeline 2's history to the same archive.
  await until(
    '00000002.history in the archive',
    async () =>
      (await readFile(join(setup.repository, 'main/wal/00000002.history.json'), 'utf8').catch(() => '')) !== '',
  );
  await until("the old timeline's .partial segment in the archive", async () =>
    (await readdir(join(setup.repository, 'main/wal'))).some((f) => /^00000001[0-9A-F]{16}\.partial\.json$/.test(f)),
  );
  // The promotion activity run again (a retry after a lost reply) finds its work done.
  const activities = createActivities({ config: setup.config, env: { ...process.env, ...testSecrets(setup.cluster) } });
  const retried = await new MockActivityEnvironment().run(activities.promoteToPrimary, {
    cluster: 'main',
    standby: 'replica1',
    fromTimeline: 1,
  });
  expect(retried).toMatchObject({ timeline: 2, already: true });
  // A second run finds a primary, not a standby: refused in plan.
  const again = await start('again', { allowBehindArchive: true });
  expect((await runFailure(again)).message).toMatch(/is not in recovery: it is a primary already/);
}, 120_000);

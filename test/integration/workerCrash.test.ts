// Fault paths of a running dump: the worker killed (SIGKILL) mid-stream, a clean SIGTERM stop,
// and a cancelled backup. Each ends with nothing partial in the repository and no pg_dump left.
// A worker killed during a short step of the database host (a PITR's stop hook, its rollback) is
// replaced within seconds: the run ends correctly well within a minute of the kill. So is one killed
// while swapDataDirectory runs: the data directory is whole and the recovery completes.
import { appendFile, chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLogicalManifest } from '../../src/lib/manifest.js';
import type { FullBackupResult } from '../../src/workflows/fullBackup.js';
import type { PointInTimeRecoveryResult } from '../../src/workflows/pointInTimeRecovery.js';
import type { Progress } from '../../src/workflows/messages.js';
import { startArchivingCluster, switchAndArchive, type ArchivingSetup } from '../helpers/archiving.js';
import { testConfig, testSecrets } from '../helpers/config.js';
import { createSampleDatabase } from '../helpers/data.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { startCluster, type TestCluster } from '../helpers/postgres.js';
import { restoreWithStockTools, rowCounts } from '../helpers/restore.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, waitForHeartbeat } from '../helpers/temporal.js';
import { PG_BIN } from '../helpers/require.js';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { existsSync } from 'node:fs';
import { spawnWorker, type WorkerProcess } from '../helpers/workerProcess.js';
import { waitForStep } from '../helpers/pitr.js';

let cluster: TestCluster;
let key: TestKey;
let env: TestWorkflowEnvironment;
let dir: string;
const workers: WorkerProcess[] = [];
/**
 * How soon after a worker's death a run must end: the 20 s heartbeat timeout, the retry and the
 * steps after it (measured 29–57 s on a quiet machine), doubled for a loaded 2-core CI machine; a
 * step that waits out its 5-minute (300 s) start-to-close timeout still fails it.
 */
const KILL_TO_END_SECONDS = 120;
/**
 * When the new worker's attempt of the killed step must have started: once the 20 s heartbeat
 * timeout and the 5–10 s retry interval have passed (30 s after the kill) and the new worker is up
 * (its start takes 10–40 s on a loaded 2-core machine), plus 15 s of slack. Far below the
 * start-to-close timeouts (5 and 15 minutes) a missing heartbeat timeout would wait out.
 */
const retryDeadline = (killedAt: number, readyAt: number) => Math.max(killedAt + 30_000, readyAt) + 15_000;

/**
 * Seconds from `killedAt` to the start of the first retried attempt (of `activityType`, if given),
 * read from the run's history (Temporal records when that attempt really started); asserts it
 * started by `retryDeadline`.
 */
async function expectPromptRetry(
  handle: WorkflowHandle,
  killedAt: number,
  readyAt: number,
  activityType?: string,
): Promise<number> {
  const events = (await handle.fetchHistory()).events ?? [];
  const typeOf = new Map(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType?.name]),
  );
  const retry = events.find(
    (e) =>
      (e.activityTaskStartedEventAttributes?.attempt ?? 0) >= 2 &&
      (!activityType || typeOf.get(String(e.activityTaskStartedEventAttributes!.scheduledEventId)) === activityType),
  );
  expect(retry, `no retried ${activityType ?? 'activity'} in the history`).toBeDefined();
  const at = Number(retry!.eventTime!.seconds) * 1000 + Math.floor((retry!.eventTime!.nanos ?? 0) / 1e6);
  console.log(
    `${activityType ?? 'the killed step'}: retry started ${((at - killedAt) / 1000).toFixed(1)} s after the kill, the new worker was up after ${((readyAt - killedAt) / 1000).toFixed(1)} s`,
  );
  expect(at).toBeLessThanOrEqual(retryDeadline(killedAt, readyAt));
  return (at - killedAt) / 1000;
}

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
  const attempts = history
    .events!.filter((e) => e.activityTaskStartedEventAttributes)
    .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 0);
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

/**
 * A hook that takes a while (stopping applications does), logging `start|end <hook> <pid> <ms>`:
 * 5 s, or once the seconds written to `<at>/hook-seconds`.
 */
async function writeSlowHook(at: string, log: string): Promise<string[]> {
  const file = join(at, 'hook.sh');
  const once = join(at, 'hook-seconds');
  await writeFile(
    file,
    `s=5; if [ -f ${once} ]; then s=$(cat ${once}); rm -f ${once}; fi\n` +
      `echo "start $PGWARDEN_HOOK $$ $(date +%s%3N)" >> ${log}\nsleep $s\necho "end $PGWARDEN_HOOK $$ $(date +%s%3N)" >> ${log}\n`,
  );
  return ['/bin/sh', file];
}

async function readHookLog(log: string) {
  return (await readFile(log, 'utf8').catch(() => ''))
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [what, hook, pid, at] = l.split(' ');
      return { what: what!, hook: hook!, pid: pid!, at: Number(at) };
    });
}

/** A whole run of the hook (started after the kill, and ended): the new worker's attempt. */
function expectRunAfter(runs: { what: string; pid: string; at: number }[], killedAt: number) {
  const retried = runs.find((r) => r.what === 'start' && r.at > killedAt);
  expect(retried, JSON.stringify(runs)).toBeDefined();
  expect(runs.some((r) => r.what === 'end' && r.pid === retried!.pid)).toBe(true);
}

it('a worker killed during a restore hook is replaced within seconds, and the restore completes', async () => {
  const queue = uniqueQueue('restore-crash');
  await createSampleDatabase(cluster, 'shop', 0.1);
  const log = join(dir, 'restore-hooks.log');
  const config = testConfig({ cluster, repository: join(dir, 'repo-restore'), taskQueue: queue, key });
  const hook = await writeSlowHook(dir, log);
  config.clusters.main!.hooks = { preRestore: hook, postRestore: hook };
  const secrets = testSecrets(cluster, key);
  const configFile = join(dir, 'restore-crash.json');
  workers.push(await spawnWorker(configFile, config, secrets));
  await env.client.workflow.execute('fullBackup', {
    taskQueue: queue,
    workflowId: `${queue}/backup`,
    args: [{ cluster: 'main', database: 'shop', backupId: '20261122T050000Z' }],
  });
  const count = async () =>
    Number((await cluster.query<{ n: string }>('SELECT count(*)::text AS n FROM orders', 'shop'))[0]!.n);
  const backedUp = await count();
  await cluster.query('DELETE FROM orders WHERE id % 2 = 0', 'shop'); // what the restore undoes

  const handle = await env.client.workflow.start('restoreDatabase', {
    taskQueue: queue,
    workflowId: `${queue}/restore`,
    args: [{ cluster: 'main', database: 'shop', backupId: '20261122T050000Z' }],
  });
  const deadline = Date.now() + 60_000;
  while ((await handle.query<Progress>('progress')).step !== 'approve') {
    if (Date.now() > deadline) throw new Error('never reached approve');
    await new Promise((r) => setTimeout(r, 200));
  }
  await handle.signal('approve', { approver: 'alice', reason: 'drill' });
  while (!(await readHookLog(log)).some((r) => r.what === 'start' && r.hook === 'preRestore')) {
    if (Date.now() > deadline) throw new Error('the preRestore hook never started');
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 1000));
  await workers.pop()!.kill('SIGKILL');
  const killedAt = Date.now();
  workers.push(await spawnWorker(configFile, config, secrets));
  const readyAt = Date.now();
  const result = (await handle.result()) as { outcome: string };
  const seconds = (Date.now() - killedAt) / 1000;
  console.log(
    `restoreDatabase with the worker killed in the preRestore hook: ended ${seconds.toFixed(1)} s after the kill`,
  );
  expect(result.outcome).toBe('restored');
  expect(seconds).toBeLessThan(KILL_TO_END_SECONDS);
  await expectPromptRetry(handle, killedAt, readyAt);
  expectRunAfter(
    (await readHookLog(log)).filter((r) => r.hook === 'preRestore'),
    killedAt,
  );
  expect(await count()).toBe(backedUp);
}, 240_000);

/**
 * A bin directory for `clusters.main.binDir`: PostgreSQL's programs, with pg_ctl wrapped so that a
 * swap can be caught running. swapDataDirectory is two renames, over in a millisecond; it first
 * checks (pg_ctl status) that the server is down. While `<gate>/armed` exists, the status of a
 * stopped server after a `stop` (the stop step's own confirmation) passes, and the next one (the
 * swap's check) writes `<gate>/held` and holds until `<gate>/release`, at most 5 minutes.
 */
async function gatedBinDir(at: string): Promise<{ binDir: string; gate: string }> {
  const binDir = join(at, 'bin');
  const gate = join(at, 'gate');
  await mkdir(binDir);
  await mkdir(gate);
  await chmod(gate, 0o777); // pg_ctl runs as the data directory's owner
  for (const f of await readdir(PG_BIN)) if (f !== 'pg_ctl') await symlink(join(PG_BIN, f), join(binDir, f));
  await writeFile(
    join(binDir, 'pg_ctl'),
    `#!/bin/sh
[ -f ${gate}/armed ] || exec ${PG_BIN}/pg_ctl "$@"
` +
      `${PG_BIN}/pg_ctl "$@"; rc=$?
` +
      `for a in "$@"; do
` +
      `  if [ "$a" = stop ]; then touch ${gate}/skip; fi
` +
      `  if [ "$a" = status ] && [ $rc = 3 ]; then
` +
      `    if [ -f ${gate}/skip ]; then rm -f ${gate}/skip; else
` +
      `      rm -f ${gate}/armed; echo "$$ $(date +%s%3N)" > ${gate}/held
` +
      `      i=0; while [ ! -f ${gate}/release ] && [ $i -lt 1500 ]; do sleep 0.2; i=$((i+1)); done
` +
      `    fi
  fi
done
exit $rc
`,
    { mode: 0o755 },
  );
  return { binDir, gate };
}

describe('a worker killed during a step on the database host', () => {
  let setup: ArchivingSetup;
  let hookLog: string;
  let t1: string;
  let t2: string;
  let gate: string;
  const queue = uniqueQueue('host-crash');
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const q = <T extends Record<string, unknown>>(sql: string) => setup.cluster.query<T>(sql, 'app');
  const serverNow = async () =>
    (
      await q<{ t: string }>(
        `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t`,
      )
    )[0]!.t;
  const state = async () => {
    const [row] = await q<{ a: string; c: string; ok: boolean; tli: number }>(
      `SELECT (SELECT count(*) FROM items WHERE batch = 'A')::text AS a, (SELECT count(*) FROM items WHERE batch = 'C')::text AS c,
              to_regclass('public.ok') IS NOT NULL AS ok, (SELECT timeline_id FROM pg_control_checkpoint()) AS tli`,
    );
    return { a: Number(row!.a), c: Number(row!.c), ok: row!.ok, timeline: row!.tli };
  };
  const hookRuns = () => readHookLog(hookLog);

  beforeAll(async () => {
    setup = await startArchivingCluster({
      taskQueue: queue,
      key,
      // Table `ok` exists at T2, not at T1: recovering to T1 fails its check, and rolls back. (The
      // rollback comes second: its promoted server may archive a timeline the later runs would follow.)
      extra: {
        verification: {
          checks: { app: [{ name: 'table ok', sql: "SELECT count(*) FROM pg_class WHERE relname = 'ok'", min: 1 }] },
        },
      },
    });
    hookLog = join(setup.dir, 'hooks.log');
    const hook = await writeSlowHook(setup.dir, hookLog);
    setup.config.clusters.main!.hooks = { preRestore: hook, postRestore: hook };
    const gated = await gatedBinDir(setup.dir);
    setup.config.clusters.main!.binDir = gated.binDir; // pg_ctl passes through until the gate is armed
    gate = gated.gate;
    await setup.cluster.query('CREATE DATABASE app');
    await q(`CREATE TABLE items (id serial PRIMARY KEY, batch text NOT NULL)`);
    workers.push(await spawnWorker(join(setup.dir, 'worker.json'), setup.config, testSecrets(setup.cluster, key)));
    await env.client.workflow.execute('baseBackup', {
      taskQueue: queue,
      workflowId: `${queue}/base`,
      args: [{ cluster: 'main', backupId: '20261122T040000Z' }],
    });
    await q(`INSERT INTO items (batch) SELECT 'A' FROM generate_series(1, 100)`);
    await sleep(1100);
    t1 = await serverNow();
    await sleep(1100);
    await q(`CREATE TABLE ok (x int)`);
    await sleep(1100);
    t2 = await serverNow();
    await sleep(1100);
    await q(`INSERT INTO items (batch) SELECT 'C' FROM generate_series(1, 10)`);
    await switchAndArchive(setup.cluster);
  }, 180_000);

  afterAll(async () => {
    await setup?.remove();
  });

  /** Starts an in-place PITR and approves it; returns once `hook` has run for a second (in `step`). */
  async function pitrInHook(target: string, hook: string, step: string, id = hook) {
    const handle = await env.client.workflow.start('pointInTimeRecovery', {
      taskQueue: queue,
      workflowId: `${queue}/pitr-${id}`,
      args: [{ cluster: 'main', target: { time: target } }],
    });
    let ended: unknown;
    handle.result().then(
      (r) => (ended = r),
      (e: unknown) => (ended = e),
    );
    const deadline = Date.now() + 120_000;
    while ((await handle.query<Progress>('progress')).step !== 'approve') {
      if (ended || Date.now() > deadline) {
        const cause = ended instanceof WorkflowFailedError ? ended.cause : undefined;
        const why = cause ? ((cause.cause as Error | undefined) ?? cause).message : JSON.stringify(ended);
        throw new Error(`never reached approve (${why}): ${workers.at(-1)!.output().slice(-3000)}`);
      }
      await sleep(200);
    }
    const before = (await hookRuns()).length;
    await handle.signal('approve', { approver: 'alice', reason: 'drill' });
    while (!(await hookRuns()).slice(before).some((r) => r.what === 'start' && r.hook === hook)) {
      if (Date.now() > deadline) throw new Error(`the ${hook} hook never started`);
      await sleep(100);
    }
    await sleep(1000);
    expect((await handle.query<Progress>('progress')).step).toBe(step);
    return { handle, before };
  }

  /** Starts an in-place PITR, approves it, and kills the worker once `hook` has run for a second. */
  async function pitrKilledInHook(target: string, hook: string, step: string) {
    const { handle, before } = await pitrInHook(target, hook, step);
    await workers.pop()!.kill('SIGKILL');
    const killedAt = Date.now();
    await appendFile(hookLog, `kill worker - ${killedAt}\n`);
    workers.push(await spawnWorker(join(setup.dir, 'worker.json'), setup.config, testSecrets(setup.cluster, key)));
    const readyAt = Date.now();
    const outcome = await handle.result().then(
      (r) => r as PointInTimeRecoveryResult,
      (e: unknown) => e as WorkflowFailedError,
    );
    const seconds = (Date.now() - killedAt) / 1000;
    console.log(
      `pitr with the worker killed in the ${hook} hook (${step}): ended ${seconds.toFixed(1)} s after the kill`,
    );
    const runs = (await hookRuns()).slice(before).filter((r) => r.hook === hook);
    return { handle, outcome, seconds, runs, killedAt, readyAt };
  }

  it("a kill during the stop (its pre-restore hook): the new worker lets the dead one's hook finish, runs it again, and recovers", async () => {
    // A hook slower than the takeover (45 s): the new worker comes while it still runs.
    await writeFile(join(setup.dir, 'hook-seconds'), '45');
    const { handle, outcome, runs, killedAt, readyAt } = await pitrKilledInHook(t2, 'preRestore', 'stop');
    expect(outcome).toMatchObject({ outcome: 'recovered', steps: expect.any(Array) });
    expectRunAfter(runs, killedAt);
    const [first, firstEnd, second] = runs;
    expect([first?.what, firstEnd?.what, second?.what]).toEqual(['start', 'end', 'start']);
    expect(firstEnd!.pid).toBe(first!.pid); // the dead worker's hook ended before the next began
    expect(second!.at - firstEnd!.at).toBeLessThan(3000); // and the next began as soon as it had
    // The new worker's attempt had started while the dead one's hook still ran: it waited.
    const events = (await handle.fetchHistory()).events ?? [];
    const stop = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'stopCluster')!;
    const retry = events.find(
      (e) =>
        String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(stop.eventId) &&
        e.activityTaskStartedEventAttributes?.attempt === 2,
    );
    expect(retry).toBeDefined();
    const retryAt = Number(retry!.eventTime!.seconds) * 1000 + Math.floor((retry!.eventTime!.nanos ?? 0) / 1e6);
    expect(retryAt).toBeLessThan(firstEnd!.at - 5000);
    expect(retryAt).toBeLessThanOrEqual(retryDeadline(killedAt, readyAt));
    console.log(
      `the retried stop started ${((retryAt - killedAt) / 1000).toFixed(1)} s after the kill, waited ${((second!.at - retryAt) / 1000).toFixed(1)} s for the dead worker's hook`,
    );
    expect(await state()).toEqual({ a: 100, c: 0, ok: true, timeline: 2 });
  }, 240_000);

  it('a kill during the rollback (its post-restore hook) costs seconds: the original cluster is back and running', async () => {
    const { handle, outcome, seconds, runs, killedAt, readyAt } = await pitrKilledInHook(t1, 'postRestore', 'rollback');
    expect(outcome).toBeInstanceOf(WorkflowFailedError);
    let cause = (outcome as WorkflowFailedError).cause as (Error & { type?: string }) | undefined;
    while (cause?.cause) cause = cause.cause as Error & { type?: string };
    expect(cause?.type).toBe('RecoveryFailed');
    expect(cause?.message).toMatch(/rolled back: check "table ok" on app returned 0/);
    expect(seconds).toBeLessThan(KILL_TO_END_SECONDS);
    await expectPromptRetry(handle, killedAt, readyAt, 'rollbackRecovery');
    // The applications were started again by a whole run of the hook after the kill.
    expectRunAfter(runs, killedAt);
    expect(await state()).toEqual({ a: 100, c: 0, ok: true, timeline: 2 }); // as the first recovery left it
  }, 240_000);

  it('a run cancelled during the stop (its pre-restore hook) ends only after the stop step has, with the original cluster running again', async () => {
    await writeFile(join(setup.dir, 'hook-seconds'), '6');
    const { handle, before } = await pitrInHook(t2, 'preRestore', 'stop', 'cancel');
    await handle.cancel();
    const ended = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    const endedAt = Date.now();
    expect(ended).toBeInstanceOf(WorkflowFailedError);
    // The stop it waited for had stopped the server: the run rolls back, starting it again.
    const message = ((ended as WorkflowFailedError).cause as Error).message;
    expect(message).toMatch(/rolled back: .*cancel.*the original data directory is in place and running/i);
    // Nothing cleans up or rolls back beside a host step still running: the hook had ended first.
    const runs = (await hookRuns()).slice(before);
    const stopEnd = runs.find((r) => r.what === 'end' && r.hook === 'preRestore');
    expect(stopEnd, JSON.stringify(runs)).toBeDefined();
    expect(stopEnd!.at).toBeLessThanOrEqual(endedAt);
    // The applications are started again, after the stop's hook had ended.
    expect(
      runs.some((r) => r.what === 'start' && r.hook === 'postRestore' && r.at >= stopEnd!.at),
      JSON.stringify(runs),
    ).toBe(true);
    expect((await state()).a).toBe(100); // the server answers
  }, 240_000);

  it('a kill while swapDataDirectory runs costs seconds: the new worker swaps, the data directory is whole and recovered', async () => {
    // A target on the live timeline (the first recovery's), after the runs above.
    await q(`INSERT INTO items (batch) SELECT 'D' FROM generate_series(1, 7)`);
    await sleep(1100);
    const t3 = await serverNow();
    await sleep(1100);
    await q(`INSERT INTO items (batch) SELECT 'E' FROM generate_series(1, 3)`);
    await switchAndArchive(setup.cluster);
    const dataDir = setup.cluster.dataDir;
    const workDirectories = async () =>
      (await readdir(join(dataDir, '..'))).filter((f) => f.includes('pgwarden-pitr-'));
    const kept = await workDirectories(); // a rolled-back run keeps its own for the post-mortem
    const handle = await env.client.workflow.start('pointInTimeRecovery', {
      taskQueue: queue,
      workflowId: `${queue}/pitr-swap`,
      args: [{ cluster: 'main', target: { time: t3 } }],
    });
    await waitForStep(handle, 'approve');
    await writeFile(join(gate, 'armed'), '');
    await handle.signal('approve', { approver: 'alice', reason: 'drill' });
    const deadline = Date.now() + 120_000;
    while (!existsSync(join(gate, 'held'))) {
      if (Date.now() > deadline)
        throw new Error(`the swap's check was never held: ${workers.at(-1)!.output().slice(-3000)}`);
      await sleep(100);
    }
    // Caught inside the swap, before its renames: the live directory is still in place, stopped.
    expect((await handle.query<Progress>('progress')).step).toBe('swap');
    const events = (await handle.fetchHistory()).events ?? [];
    expect(events.some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'swapDataDirectory')).toBe(
      true,
    );
    expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true);
    expect(existsSync(join(dataDir, 'postmaster.pid'))).toBe(false);
    await workers.pop()!.kill('SIGKILL');
    const killedAt = Date.now();
    await writeFile(join(gate, 'release'), ''); // the dead worker's pg_ctl ends; nobody waits for it
    workers.push(await spawnWorker(join(setup.dir, 'worker.json'), setup.config, testSecrets(setup.cluster, key)));
    const readyAt = Date.now();
    const result = (await handle.result()) as PointInTimeRecoveryResult;
    const seconds = (Date.now() - killedAt) / 1000;
    console.log(`pitr with the worker killed in swapDataDirectory: ended ${seconds.toFixed(1)} s after the kill`);
    expect(result).toMatchObject({ outcome: 'recovered' });
    await expectPromptRetry(handle, killedAt, readyAt, 'swapDataDirectory');
    expect(seconds).toBeLessThan(KILL_TO_END_SECONDS);
    // Whole: the recovered directory is the live one, the original is kept aside intact, nothing half-moved.
    expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true);
    const aside = result.previousDataDirectory!;
    expect(aside).toMatch(/\.pre-pitr-/);
    expect(existsSync(join(aside, 'PG_VERSION'))).toBe(true);
    expect(existsSync(join(aside, 'global/pg_control'))).toBe(true);
    await rm(join(gate, 'release'));
    expect(await workDirectories()).toEqual(kept); // this run's is gone
    const [row] = await q<{ d: string; e: string }>(
      `SELECT (SELECT count(*) FROM items WHERE batch = 'D')::text AS d, (SELECT count(*) FROM items WHERE batch = 'E')::text AS e`,
    );
    expect({ d: Number(row!.d), e: Number(row!.e) }).toEqual({ d: 7, e: 0 });
    expect((await state()).a).toBe(100);
    await rm(aside, { recursive: true, force: true });
  }, 300_000);
});

// Point-in-time recovery when things are worst, against a real PostgreSQL 15 cluster archiving
// through `pgwarden wal-push`, a real S3 server (versitygw) as the offsite copy, and the real
// Temporal dev server: a rebuilt host (data directory and local repository both lost) recovers in
// place from offsite alone to a time between two base backups; the recovered server logs where the
// cluster logs (pg_ctl's log file beside the data directory, or its own logging collector) and the
// recovery log is kept beside the moved-aside directory; a failed recovery on a rebuilt host leaves
// the data directory as it was found (missing or empty); a failed rehearsal names a kept log;
// `latest` onto a rebuilt host reports its own stop point, not an earlier run's line in a reused log file;
// an empty data directory (a rebuilt host that has one) is recovered into after approval.
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OffsiteSyncResult } from '../../src/workflows/offsiteSync.js';
import type { PointInTimeRecoveryInput, PointInTimeRecoveryResult } from '../../src/workflows/pointInTimeRecovery.js';
import { startArchivingCluster, switchAndArchive, type ArchivingSetup } from '../helpers/archiving.js';
import { testSecrets } from '../helpers/config.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import type { Progress } from '../../src/workflows/messages.js';
import { waitForStep } from '../helpers/pitr.js';
import { PG_BIN } from '../helpers/require.js';
import { startS3Server, type S3Server } from '../helpers/s3.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

const S3_KEY_ENV = 'PGWARDEN_TEST_S3_KEY';
const S3_SECRET_ENV = 'PGWARDEN_TEST_S3_SECRET';

let setup: ArchivingSetup;
let key: TestKey;
let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let s3: S3Server;
const queue = uniqueQueue('pitr-dr');
let runs = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const q = <T extends Record<string, unknown>>(sql: string) => setup.cluster.query<T>(sql, 'app');
const count = async (batch: string) =>
  Number((await q<{ n: string }>(`SELECT count(*)::text AS n FROM items WHERE batch = '${batch}'`))[0]!.n);
const serverNow = async () =>
  (
    await q<{ t: string }>(
      `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t`,
    )
  )[0]!.t;
/** A commit, then a target time strictly after it, then another commit: the archive proves the target reached. */
async function targetBetween(before: string, after: string, rows = 3): Promise<string> {
  await q(`INSERT INTO items (batch) SELECT '${before}' FROM generate_series(1, ${rows})`);
  await sleep(1100);
  const t = await serverNow();
  await sleep(1100);
  await q(`INSERT INTO items (batch) SELECT '${after}' FROM generate_series(1, 2)`);
  await switchAndArchive(setup.cluster);
  return t;
}

const asPostgres = (args: string[]) =>
  process.getuid?.() === 0
    ? execa('runuser', ['-u', 'postgres', '--', join(PG_BIN, 'pg_ctl'), ...args], { stdin: 'ignore' })
    : execa(join(PG_BIN, 'pg_ctl'), args, { stdin: 'ignore' });
const stopServer = () => asPostgres(['-D', setup.cluster.dataDir, '-m', 'fast', '-w', 'stop']);
const startServer = () =>
  asPostgres([
    '-D',
    setup.cluster.dataDir,
    '-l',
    join(dirname(setup.cluster.dataDir), 'server.log'),
    '-w',
    '-t',
    '60',
    'start',
  ]).catch(async (e: Error) => {
    // Once the cluster's logging collector is on, the reason is in its newest file.
    const pglog = join(setup.cluster.dataDir, 'pglog');
    const newest = (await readdir(pglog).catch(() => [] as string[])).sort().at(-1);
    const tail = async (f: string) => (await readFile(f, 'utf8').catch(() => '')).slice(-2000);
    throw new Error(
      `${e.message}\n${await tail(join(dirname(setup.cluster.dataDir), 'server.log'))}\n${newest ? await tail(join(pglog, newest)) : ''}`,
    );
  });
const siblings = async () => readdir(dirname(setup.cluster.dataDir));

beforeAll(async () => {
  [key, env, s3] = await Promise.all([createTestKey(), testEnvironment(), startS3Server()]);
  await s3.bucket('offsite');
  setup = await startArchivingCluster({
    taskQueue: queue,
    key,
    extra: {
      repositories: {
        s3: {
          type: 's3',
          bucket: 'offsite',
          endpoint: s3.endpoint,
          forcePathStyle: true,
          accessKeyIdEnv: S3_KEY_ENV,
          secretAccessKeyEnv: S3_SECRET_ENV,
        },
      },
    },
  });
  await setup.cluster.query('CREATE DATABASE app');
  await q(`CREATE TABLE items (id serial PRIMARY KEY, batch text NOT NULL)`);
  worker = await startPgwardenWorker(env, setup.config, {
    ...testSecrets(setup.cluster, key),
    [S3_KEY_ENV]: s3.accessKey,
    [S3_SECRET_ENV]: s3.secretKey,
  });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await Promise.all([setup?.remove(), key?.remove(), s3?.destroy()]);
});

const baseBackup = (backupId: string) =>
  env.client.workflow.execute('baseBackup', {
    taskQueue: queue,
    workflowId: `${queue}/base-${backupId}`,
    args: [{ cluster: 'main', backupId }],
  });

async function startPitr(input: PointInTimeRecoveryInput): Promise<WorkflowHandle> {
  return env.client.workflow.start('pointInTimeRecovery', {
    taskQueue: queue,
    workflowId: `${queue}/pitr-${++runs}`,
    args: [input],
  });
}

async function approved(
  input: PointInTimeRecoveryInput,
  beforeApproval?: (waiting: Progress) => Promise<void>,
): Promise<WorkflowHandle> {
  const handle = await startPitr(input);
  const waiting = await waitForStep(handle, 'approve');
  await beforeApproval?.(waiting);
  await handle.signal('approve', { approver: 'alice', reason: 'DR drill' });
  return handle;
}

async function failureMessage(handle: WorkflowHandle): Promise<string> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return ((err as WorkflowFailedError).cause as Error).message;
}

/** Waits until `file` holds `text` after byte `from`. */
async function logReceives(file: string, from: number, text: string): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const tail = (await readFile(file)).subarray(from).toString('utf8');
    if (tail.includes(text)) return tail;
    if (Date.now() > deadline) throw new Error(`${file} did not receive "${text}"; it got: ${tail.slice(-500)}`);
    await sleep(200);
  }
}

/** The statement fails; PostgreSQL logs it (log_min_error_statement = error). */
const failingStatement = (marker: string) =>
  q(`SELECT ${marker}()`).then(
    () => expect.unreachable(),
    (e: Error) => expect(e.message).toContain(marker),
  );

describe('pointInTimeRecovery on a rebuilt host', () => {
  let t1: string;

  it('recovers in place from offsite alone, with no data directory, to a time between two base backups', async () => {
    await baseBackup('20261122T010000Z');
    t1 = await targetBetween('A', 'B', 10);
    await baseBackup('20261122T020000Z');
    await q(`INSERT INTO items (batch) SELECT 'C' FROM generate_series(1, 5)`);
    await switchAndArchive(setup.cluster);
    const synced = (await env.client.workflow.execute('offsiteSync', {
      taskQueue: queue,
      workflowId: `${queue}/sync`,
      args: [{ cluster: 'main' }],
    })) as OffsiteSyncResult;
    for (const r of synced.repositories) expect(r.check!.problems).toEqual([]);

    // The disk is lost: the server is down, its data directory gone, the local repository empty.
    await stopServer();
    const lostDisk = `${setup.cluster.dataDir}.lost-disk`;
    await rename(setup.cluster.dataDir, lostDisk);
    await rm(join(setup.repository, 'main/base'), { recursive: true, force: true });
    for (const f of await readdir(join(setup.repository, 'main/wal'))) await rm(join(setup.repository, 'main/wal', f));

    const handle = await startPitr({ cluster: 'main', target: { time: t1 } });
    const waiting = await waitForStep(handle, 'approve'); // approval is still required
    expect(waiting.detail).toMatch(/is missing on this host \(nothing to stop or keep\).* Approve: pgwarden approve/);
    expect(existsSync(setup.cluster.dataDir)).toBe(false); // nothing laid down before approval
    await handle.signal('approve', { approver: 'alice', reason: 'host rebuilt' });
    const result = (await handle.result()) as PointInTimeRecoveryResult;
    expect(result).toMatchObject({ outcome: 'recovered', backupId: '20261122T010000Z' });
    expect(result.previousDataDirectory).toBeUndefined(); // there was nothing to keep
    expect(result.recovery!.stoppedAt).toMatch(/recovery stopping before commit/);
    expect({ a: await count('A'), b: await count('B'), c: await count('C') }).toEqual({ a: 10, b: 0, c: 0 });
    // Only the base backup the target needed came back from offsite, not the newest one.
    expect(await readdir(join(setup.repository, 'main/base'))).toEqual(['20261122T010000Z']);
    expect((await siblings()).filter((f) => f.includes('pgwarden-pitr-') || f.includes('.pre-pitr-'))).toEqual([]);

    // The server logs to its log file beside the data directory (the default), and keeps doing so.
    const serverLog = `${setup.cluster.dataDir}.log`;
    const before = (await stat(serverLog)).size;
    await failingStatement('pgwarden_after_rebuild');
    await logReceives(serverLog, before, 'pgwarden_after_rebuild');
    await rm(lostDisk, { recursive: true, force: true });
  }, 240_000);

  it('the recovered server logs where the cluster logs (its logging collector), and the recovery log is kept beside the moved-aside data directory', async () => {
    // The cluster's own logging: the collector into log_directory, in the config a base backup carries.
    await setup.cluster.query(`ALTER SYSTEM SET logging_collector = on`);
    await setup.cluster.query(`ALTER SYSTEM SET log_directory = 'pglog'`);
    await baseBackup('20261122T030000Z');
    const t2 = await targetBetween('D', 'E');
    const handle = await approved({ cluster: 'main', target: { time: t2 } });
    const result = (await handle.result()) as PointInTimeRecoveryResult;
    expect(result).toMatchObject({ outcome: 'recovered', backupId: '20261122T030000Z' });
    expect({ d: await count('D'), e: await count('E') }).toEqual({ d: 3, e: 0 });
    expect(result.recovery!.stoppedAt).toMatch(/recovery stopping before commit/); // read from the collector's file

    // PostgreSQL's log: the collector's current file in <data>/pglog, and new lines reach it.
    const file = (await setup.cluster.query<{ file: string }>(`SELECT pg_current_logfile() AS file`))[0]!.file;
    expect(file).toMatch(/^pglog\//);
    const collected = join(setup.cluster.dataDir, file);
    const before = (await stat(collected)).size;
    await failingStatement('pgwarden_after_pitr');
    await logReceives(collected, before, 'pgwarden_after_pitr');

    // The recovery log survives the work directory, beside the moved-aside data directory.
    const aside = result.previousDataDirectory!;
    expect(aside).toMatch(/\.pre-pitr-/);
    const recoveryLog = `${aside.replace('.pre-pitr-', '.pitr-')}.log`;
    expect(dirname(recoveryLog)).toBe(dirname(aside));
    expect(await readFile(recoveryLog, 'utf8')).toContain(result.recovery!.stoppedAt!);
    expect((await stat(recoveryLog)).mode & 0o777).toBe(0o600);
    expect((await siblings()).filter((f) => f.includes('pgwarden-pitr-'))).toEqual([]);
    await rm(aside, { recursive: true, force: true });
  }, 180_000);

  for (const found of ['missing', 'empty'] as const) {
    it(`a failed recovery onto a rebuilt host (data directory ${found}) leaves it ${found} and names a log that exists`, async () => {
      const t3 = await targetBetween(`F-${found}`, `G-${found}`);
      await stopServer();
      const lostDisk = `${setup.cluster.dataDir}.lost-disk`;
      await rename(setup.cluster.dataDir, lostDisk);
      if (found === 'empty') {
        await mkdir(setup.cluster.dataDir, { mode: 0o700 });
        if (process.getuid?.() === 0) await execa('chown', ['postgres:postgres', setup.cluster.dataDir]);
      }
      // A failed recovery keeps its work directory for the post-mortem: this run's is the new one.
      const earlier = await siblings();
      try {
        const handle = await approved({ cluster: 'main', target: { time: t3 } }, async (waiting) => {
          expect(waiting.detail).toContain(`is ${found} on this host (nothing to stop or keep)`);
          // The WAL goes missing after the replay before the approval, staged and in the replayed
          // copy's pg_wal: the start after the approval cannot begin (no checkpoint record).
          // Every segment: which one holds the checkpoint is not this test's business.
          const work = (await siblings()).find((f) => f.includes('pgwarden-pitr-') && !earlier.includes(f))!;
          const walDir = join(dirname(setup.cluster.dataDir), work, 'wal');
          const segments = (await readdir(walDir)).filter((f) => /^[0-9A-F]{24}$/.test(f));
          expect(segments.length).toBeGreaterThan(0);
          for (const f of segments) await rm(join(walDir, f));
          const pgWal = join(dirname(setup.cluster.dataDir), work, 'data/pg_wal');
          for (const f of (await readdir(pgWal)).filter((f) => /^[0-9A-F]{24}$/.test(f))) await rm(join(pgWal, f));
        });
        const message = await failureMessage(handle);
        expect(message).toMatch(/recovery failed and was rolled back: the server stopped during recovery/);
        const named = /\(log (\S+)\)/.exec(message)?.[1];
        expect(named, message).toBeDefined();
        expect(existsSync(named!), `${named} exists`).toBe(true);
        expect(await readFile(named!, 'utf8')).toMatch(/FATAL|PANIC/);
        // As found: missing, or empty; the failed recovery is kept for the post-mortem.
        if (found === 'missing') expect(existsSync(setup.cluster.dataDir)).toBe(false);
        else {
          expect(await readdir(setup.cluster.dataDir)).toEqual([]);
          const [now, before] = await Promise.all([stat(setup.cluster.dataDir), stat(lostDisk)]);
          expect({ mode: now.mode & 0o7777, uid: now.uid }).toEqual({ mode: 0o700, uid: before.uid }); // as prepared
        }
        const failed = (await siblings()).filter((f) => f.includes('.failed-pitr-'));
        expect(failed).toHaveLength(1);
        expect(existsSync(join(dirname(setup.cluster.dataDir), failed[0]!, 'PG_VERSION'))).toBe(true);
        await rm(join(dirname(setup.cluster.dataDir), failed[0]!), { recursive: true, force: true });
      } catch (err) {
        console.error(`rebuilt-host failure test (${found}) failed:`, err);
        throw err;
      } finally {
        // The operator's disk comes back; the cluster runs again. Whatever a failed assertion left
        // running in the rebuilt directory is stopped first, so the next test finds the port free.
        if (existsSync(join(setup.cluster.dataDir, 'postmaster.pid')))
          await asPostgres(['-D', setup.cluster.dataDir, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
        await rm(setup.cluster.dataDir, { recursive: true, force: true });
        await rename(lostDisk, setup.cluster.dataDir);
        await startServer();
      }
      expect(await count(`F-${found}`)).toBe(3);
    }, 180_000);
  }

  it('a rehearsal whose server cannot start fails naming its kept recovery log', async () => {
    // A base backup whose configuration needs a library this host lacks (set, never loaded live).
    await setup.cluster.query(`ALTER SYSTEM SET shared_preload_libraries = 'pgwarden_no_such_library'`);
    try {
      await baseBackup('20261122T040000Z');
    } finally {
      await setup.cluster.query(`ALTER SYSTEM RESET shared_preload_libraries`);
    }
    await switchAndArchive(setup.cluster);
    try {
      const message = await failureMessage(
        await startPitr({ cluster: 'main', target: { latest: true }, mode: 'rehearsal' }),
      );
      expect(message).toMatch(/^rehearsal failed: /);
      const kept = /recovery log is kept at (\S+)$/.exec(message)?.[1];
      expect(kept, message).toBeDefined();
      expect(await readFile(kept!, 'utf8')).toContain('pgwarden_no_such_library');
      expect((await siblings()).filter((f) => f.includes('rehearsal') && !f.endsWith('.log'))).toEqual([]); // the scratch copy is gone
      await rm(kept!);
    } finally {
      await rm(join(setup.repository, 'main/base/20261122T040000Z'), { recursive: true, force: true });
    }
    // A rehearsal that succeeds leaves no log behind.
    const ok = (await (
      await startPitr({ cluster: 'main', target: { latest: true }, mode: 'rehearsal' })
    ).result()) as PointInTimeRecoveryResult;
    expect(ok.outcome).toBe('rehearsed');
    expect((await siblings()).filter((f) => f.includes('rehearsal'))).toEqual([]);
  }, 180_000);

  it("latest onto a rebuilt host reports where this recovery stopped, not an earlier recovery's line in a collector log the base backup carries", async () => {
    // A fixed log_filename: the collector appends to the same file at every start, and the base
    // backup carries it with an earlier recovery's stop line in it.
    await setup.cluster.query(`ALTER SYSTEM SET log_filename = 'pgwarden-fixed.log'`);
    await setup.cluster.query(`SELECT pg_reload_conf()`);
    const fixed = join(setup.cluster.dataDir, 'pglog/pgwarden-fixed.log');
    const oldLine = 'recovery stopping before commit of transaction 999, time 2026-11-01 00:00:00.000001+00';
    for (let i = 0; !existsSync(fixed); i++) {
      if (i > 50) throw new Error(`${fixed} was not created`);
      await sleep(100);
    }
    await appendFile(fixed, `2026-11-01 00:00:00.000 UTC [1] LOG:  ${oldLine}\n`);
    await baseBackup('20261122T050000Z');
    await q(`INSERT INTO items (batch) SELECT 'H' FROM generate_series(1, 4)`);
    await switchAndArchive(setup.cluster);

    // The disk is lost; latest is what the archive holds.
    await stopServer();
    const lostDisk = `${setup.cluster.dataDir}.lost-disk`;
    await rename(setup.cluster.dataDir, lostDisk);
    const logsBefore = (await siblings()).filter((f) => f.includes('.pitr-') && f.endsWith('.log'));
    const handle = await approved({ cluster: 'main', target: { latest: true } }, async (waiting) => {
      expect(waiting.detail).toContain('is missing on this host (nothing to stop or keep)');
    });
    const result = (await handle.result()) as PointInTimeRecoveryResult;
    expect(result).toMatchObject({ outcome: 'recovered', backupId: '20261122T050000Z' });
    expect(result.previousDataDirectory).toBeUndefined();
    expect(await count('H')).toBe(4);
    expect(await readFile(fixed, 'utf8')).toContain(oldLine); // the old line is in the file this start wrote to
    expect(result.recovery!.stoppedAt).toBeDefined();
    expect(result.recovery!.stoppedAt).not.toContain('transaction 999');
    expect(result.recovery!.stoppedAt).toMatch(/last completed transaction|redo done at/); // a latest recovery's own end
    const kept = (await siblings()).filter(
      (f) => f.includes('.pitr-') && f.endsWith('.log') && !logsBefore.includes(f),
    );
    expect(kept).toHaveLength(1);
    const keptText = await readFile(join(dirname(setup.cluster.dataDir), kept[0]!), 'utf8');
    expect(keptText).toContain(result.recovery!.stoppedAt!);
    expect(keptText).not.toContain('transaction 999');
    await rm(lostDisk, { recursive: true, force: true });
  }, 180_000);

  it('recovers in place onto an empty data directory (a rebuilt host that has it, empty), after approval, and the server keeps logging', async () => {
    await baseBackup('20261122T060000Z');
    const t4 = await targetBetween('I', 'J', 4);
    await stopServer();
    const lostDisk = `${setup.cluster.dataDir}.lost-disk`;
    await rename(setup.cluster.dataDir, lostDisk);
    // The rebuilt host's directory, as an operator prepares it for PostgreSQL: empty, postgres's, 0700.
    await mkdir(setup.cluster.dataDir, { mode: 0o700 });
    if (process.getuid?.() === 0) await execa('chown', ['postgres:postgres', setup.cluster.dataDir]);
    const earlier = await siblings(); // failed recoveries before keep their work directories
    const handle = await startPitr({ cluster: 'main', target: { time: t4 } });
    const waiting = await waitForStep(handle, 'approve'); // approval is still required
    expect(waiting.detail).toMatch(/is empty on this host \(nothing to stop or keep\).* Approve: pgwarden approve/);
    expect(await readdir(setup.cluster.dataDir)).toEqual([]); // nothing laid down before approval
    await handle.signal('approve', { approver: 'alice', reason: 'host rebuilt, disk empty' });
    const result = (await handle.result()) as PointInTimeRecoveryResult;
    expect(result).toMatchObject({ outcome: 'recovered', backupId: '20261122T060000Z' });
    // An empty directory has nothing to keep: it is not moved aside, named or left behind.
    expect(result.previousDataDirectory).toBeUndefined();
    expect((await siblings()).filter((f) => f.includes('.pre-pitr-') && !earlier.includes(f))).toEqual([]);
    expect(result.recovery!.stoppedAt).toMatch(/recovery stopping before commit/);
    expect({ i: await count('I'), j: await count('J') }).toEqual({ i: 4, j: 0 });
    expect(existsSync(join(setup.cluster.dataDir, 'PG_VERSION'))).toBe(true);
    expect(
      (await siblings()).filter(
        (f) => (f.includes('pgwarden-pitr-') || f.includes('.failed-pitr-')) && !earlier.includes(f),
      ),
    ).toEqual([]);

    // PostgreSQL's log after the recovery: where this cluster logs (its collector's file, else
    // pg_ctl's file beside the data directory), and new lines reach it.
    const current = (await setup.cluster.query<{ file: string | null }>(`SELECT pg_current_logfile() AS file`))[0]!
      .file;
    const serverLog = current ? join(setup.cluster.dataDir, current) : `${setup.cluster.dataDir}.log`;
    const before = (await stat(serverLog)).size;
    await failingStatement('pgwarden_after_empty_rebuild');
    await logReceives(serverLog, before, 'pgwarden_after_empty_rebuild');
    await rm(lostDisk, { recursive: true, force: true });
  }, 180_000);
});

// Point-in-time recovery targets proven from the WAL's content, and `latest` meaning the stopped
// server's last committed transaction, against a real PostgreSQL 15 cluster archiving through
// `pgwarden wal-push` and the real Temporal dev server. (a) The reproduction of issue 13's point 3:
// pg_switch_wal(), take T, commit a row, the switched segment archived — plan waits until a commit
// after T is archived (it switches WAL itself), and the in-place recovery reaches T. (b) With the
// archiver failing, targets past the end of the archive fail in plan (BadTarget, after the bounded
// wait), with the cluster still running in the same data directory and nothing staged. (c) Still
// with the archiver failing, a row committed right before the approval of a `latest` recovery is
// there afterwards: it came from the moved-aside pg_wal. (d) A segment the archive holds with other
// content than pg_wal fails before the swap, naming it. (g) An LSN and a restore point made after the
// last archived segment, archiver working: plan waits, and the in-place recovery reaches each. (h) A
// log file named in the config, made postgres:adm 0640, keeps its owner and gets the server's lines.
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Progress } from '../../src/workflows/messages.js';
import type { PointInTimeRecoveryInput, PointInTimeRecoveryResult } from '../../src/workflows/pointInTimeRecovery.js';
import { execa } from 'execa';
import { PGWARDEN, startArchivingCluster, switchAndArchive, type ArchivingSetup } from '../helpers/archiving.js';
import { testSecrets } from '../helpers/config.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { IN_PLACE_STEPS, waitForStep } from '../helpers/pitr.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';
import { activityResult, runFailure, scheduledActivities } from '../helpers/workflowRuns.js';

let setup: ArchivingSetup;
let key: TestKey;
let env: TestWorkflowEnvironment;
let worker: RunningWorker;
const queue = uniqueQueue('pitr-targets');
const WAIT_SECONDS = 4;
let runs = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const q = <T extends Record<string, unknown>>(sql: string) => setup.cluster.query<T>(sql, 'app');
const serverNow = async () =>
  (
    await q<{ t: string }>(
      `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t`,
    )
  )[0]!.t;
const tags = async () => (await q<{ tag: string }>('SELECT tag FROM rows ORDER BY id')).map((r) => r.tag);
const live = async () => {
  const [row] = await q<{ rec: boolean; tli: number; dir: string }>(
    `SELECT pg_is_in_recovery() AS rec, (SELECT timeline_id FROM pg_control_checkpoint()) AS tli, current_setting('data_directory') AS dir`,
  );
  return { inRecovery: row!.rec, timeline: row!.tli, dataDirectory: row!.dir };
};
const siblings = async () =>
  (await readdir(join(setup.cluster.dataDir, '..'))).filter((f) => f.includes('pitr')).sort();

beforeAll(async () => {
  [key, env] = await Promise.all([createTestKey(), testEnvironment()]);
  setup = await startArchivingCluster({ taskQueue: queue, key });
  await setup.cluster.query('CREATE DATABASE app');
  await q(`CREATE TABLE rows (id serial PRIMARY KEY, tag text NOT NULL)`);
  const config = structuredClone(setup.config);
  config.clusters.main!.archiveWaitSeconds = WAIT_SECONDS;
  worker = await startPgwardenWorker(env, config, testSecrets(setup.cluster, key));
  await env.client.workflow.execute('baseBackup', {
    taskQueue: queue,
    workflowId: `${queue}/base`,
    args: [{ cluster: 'main', backupId: '20261122T030000Z' }],
  });
}, 180_000);

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await Promise.all([setup?.remove(), key?.remove()]);
});

async function startPitr(input: PointInTimeRecoveryInput): Promise<WorkflowHandle> {
  return env.client.workflow.start('pointInTimeRecovery', {
    taskQueue: queue,
    workflowId: `${queue}/pitr-${++runs}`,
    args: [input],
  });
}

/** Polls `progress` until it shows `step` with a detail matching `detail`. */
async function progressMatching(handle: WorkflowHandle, step: string, detail: RegExp): Promise<Progress> {
  const seen: string[] = [];
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(100)) {
    const p = await handle.query<Progress>('progress');
    seen.push(`${p.step}: ${p.detail ?? ''}`);
    if (p.step === step && detail.test(p.detail ?? '')) return p;
  }
  throw new Error(`progress never showed ${step} ${String(detail)}; saw ${[...new Set(seen)].join(' | ')}`);
}

async function approve(handle: WorkflowHandle): Promise<PointInTimeRecoveryResult> {
  await waitForStep(handle, 'approve');
  await handle.signal('approve', { approver: 'alice', reason: 'drill' });
  return (await handle.result()) as PointInTimeRecoveryResult;
}

describe('pointInTimeRecovery targets proven from the WAL', () => {
  it('(a) reaches T when the only commit after T was not archived when the run started', async () => {
    await q(`INSERT INTO rows (tag) VALUES ('before')`);
    const [{ seg }] = (await q<{ seg: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS seg')) as [{ seg: string }];
    const targetT = await serverNow();
    await sleep(50);
    await q(`INSERT INTO rows (tag) VALUES ('after')`);
    for (let i = 0; ; i++) {
      const [row] = await setup.cluster.query<{ last: string | null }>(
        'SELECT last_archived_wal AS last FROM pg_stat_archiver',
      );
      if (row!.last && row!.last >= seg) break;
      if (i > 300) throw new Error(`${seg} never archived`);
      await sleep(100);
    }
    // The archive's newest segment holds only records from before T; the commit after T is in the
    // server's current segment. Replay to T needs it: plan must get it archived before going on.
    const handle = await startPitr({ cluster: 'main', target: { time: targetT } });
    const result = await approve(handle);
    expect(result).toMatchObject({ outcome: 'recovered' });
    expect(result.recovery!.stoppedAt).toMatch(/recovery stopping before commit/);
    expect((await scheduledActivities(handle)).filter((a) => a === 'planRecovery').length).toBeGreaterThanOrEqual(2); // it waited
    expect(await tags()).toEqual(['before']);
    expect(await live()).toMatchObject({ inRecovery: false, timeline: 2 });
  });

  it('(b) refuses targets past the end of the archive in plan, the cluster untouched, when archiving fails', async () => {
    await q(`INSERT INTO rows (tag) VALUES ('b')`);
    await switchAndArchive(setup.cluster);
    // The archiver fails from now on (as when the archive's disk is full).
    await setup.cluster.query(`ALTER SYSTEM SET archive_command = 'false'`);
    await setup.cluster.query('SELECT pg_reload_conf()');
    const before = { ...(await live()), siblings: await siblings() };
    const rowsBefore = await tags();
    const [{ lsn }] = (await setup.cluster.query<{ lsn: string }>(
      `SELECT pg_current_wal_insert_lsn()::text AS lsn`,
    )) as [{ lsn: string }];
    await setup.cluster.query(`SELECT pg_create_restore_point('not-archived')`);
    await q(`INSERT INTO rows (tag) VALUES ('unarchived')`);
    await sleep(50);
    const t = await serverNow();
    // Far enough ahead that the WAL switches of the cases before it do not reach it.
    const [{ future }] = (await setup.cluster.query<{ future: string }>(
      `SELECT (pg_current_wal_insert_lsn() + 4294967296)::text AS future`,
    )) as [{ future: string }];
    const cases: [PointInTimeRecoveryInput['target'], RegExp][] = [
      [
        { time: t },
        new RegExp(
          `time ${t.replace(/[.+]/g, '\\$&')} is not reached by the archived WAL: the archived WAL ends at LSN .*waited \\d+ s .*archiveWaitSeconds.* for archiving of [0-9A-F]{24}`,
        ),
      ],
      [{ lsn }, /LSN .* is not reached by the archived WAL: the archived WAL ends at LSN .*waited/],
      [
        { name: 'not-archived' },
        /restore point "not-archived" is not reached by the archived WAL: .* holds no restore point "not-archived"; waited/,
      ],
      [{ lsn: future }, /is past the server's current WAL position/],
    ];
    for (const [target, message] of cases) {
      const started = Date.now();
      const handle = await startPitr({ cluster: 'main', target });
      if ('time' in target) {
        // The wait shows in `progress`: how far the archive reaches, and what plan waits for.
        const waiting = await progressMatching(
          handle,
          'plan',
          /waits for [0-9A-F]{24} to be archived|waiting for archiving of [0-9A-F]{24}/,
        );
        expect(waiting.detail).toMatch(/the archived WAL ends at LSN/);
      }
      const f = await runFailure(handle);
      expect(f.type, JSON.stringify(target)).toBe('BadTarget');
      expect(f.message).toMatch(message);
      expect(f.message).toContain('Nothing was touched');
      const ran = await scheduledActivities(handle);
      expect(
        ran.filter((a) => !['fetchRecoveryFromOffsite', 'planRecovery'].includes(a)),
        JSON.stringify(target),
      ).toEqual([]);
      if (!('lsn' in target && target.lsn === future))
        expect(Date.now() - started).toBeGreaterThanOrEqual(WAIT_SECONDS * 1000);
      // Seconds, not a step's 5-minute timeout: generous for a loaded 2-core machine.
      expect(Date.now() - started).toBeLessThan((WAIT_SECONDS + 20) * 2 * 1000);
    }
    expect({ ...(await live()), siblings: await siblings() }).toEqual(before);
    expect(await tags()).toEqual([...rowsBefore, 'unarchived']);
  });

  it('(c) latest, with the archiver failing: a row committed right before the approval is there afterwards', async () => {
    const handle = await startPitr({ cluster: 'main', target: { latest: true } });
    await waitForStep(handle, 'approve');
    await q(`INSERT INTO rows (tag) VALUES ('last')`);
    const [{ failed }] = (await setup.cluster.query<{ failed: string }>(
      'SELECT failed_count::text AS failed FROM pg_stat_archiver',
    )) as [{ failed: string }];
    expect(Number(failed)).toBeGreaterThan(0); // the premise: archiving is behind
    await handle.signal('approve', { approver: 'alice', reason: 'latest' });
    expect((await progressMatching(handle, 'stop', /waiting for [0-9A-F]{24} to be archived/)).detail).toMatch(
      /of 4 s/,
    );
    const result = (await handle.result()) as PointInTimeRecoveryResult;
    expect(result).toMatchObject({ outcome: 'recovered' });
    expect(result.steps.map((s) => s.step)).toEqual(IN_PLACE_STEPS);
    expect(await tags()).toEqual(['before', 'b', 'unarchived', 'last']);
    expect(await live()).toMatchObject({ inRecovery: false, timeline: 3 });
    // The segments came from the moved-aside pg_wal into the staged WAL, after the archive's.
    const ran = await scheduledActivities(handle);
    expect(ran.indexOf('archiveCurrentWal')).toBeLessThan(ran.indexOf('stopCluster'));
    expect(ran.indexOf('gatherUnarchivedWal')).toBeGreaterThan(ran.indexOf('stopCluster'));
    expect(ran.indexOf('gatherUnarchivedWal')).toBeLessThan(ran.indexOf('swapDataDirectory'));
    const gathered = await activityResult<{ fromArchive: string[]; fromPgWal: string[]; archived: string[] }>(
      handle,
      'gatherUnarchivedWal',
    );
    expect(gathered!.fromPgWal.length).toBeGreaterThanOrEqual(2);
    expect(gathered!.fromPgWal.every((n) => n.startsWith('00000002'))).toBe(true);
    // The complete ones are in the archive now (owned like the rest of it), the partial last one is not.
    expect(gathered!.archived).toEqual(gathered!.fromPgWal.slice(0, -1));
    const walDir = join(setup.repository, 'main/wal');
    for (const name of gathered!.archived)
      expect((await stat(join(walDir, `${name}.json`))).uid).toBe((await stat(walDir)).uid);
  });

  it('(d) latest: a segment that the archive holds with other content than pg_wal fails before the swap, naming it', async () => {
    // Archiving works again (the recovered server came from the base backup's settings), and the
    // archive is continuous: the first base backup still reaches timeline 3 through timeline 2.
    await switchAndArchive(setup.cluster); // timeline 3's history file is archived
    const handle = await startPitr({ cluster: 'main', target: { latest: true } });
    await waitForStep(handle, 'approve');
    expect(await activityResult(handle, 'planRecovery')).toMatchObject({
      backupId: '20261122T030000Z',
      targetTimeline: 3,
    });
    // Then the archiver fails, and a segment the server has not archived yet appears in the archive
    // with other content (as when a second cluster archives into the same place by mistake).
    await setup.cluster.query(`ALTER SYSTEM SET archive_command = 'false'`);
    await setup.cluster.query('SELECT pg_reload_conf()');
    await q(`INSERT INTO rows (tag) VALUES ('d')`);
    const [{ seg }] = (await setup.cluster.query<{ seg: string }>(
      'SELECT pg_walfile_name(pg_switch_wal()) AS seg',
    )) as [{ seg: string }];
    const walDir = join(setup.repository, 'main/wal');
    const other = (await readdir(walDir)).filter((f) => /^[0-9A-F]{24}\.json$/.test(f)).sort()[0]!;
    const record = JSON.parse(await readFile(join(walDir, other), 'utf8')) as { name: string; stored: string };
    const fake = join(walDir, `${seg}.json`);
    await writeFile(fake, JSON.stringify({ ...record, name: seg, stored: record.stored.replace(record.name, seg) }));
    const before = await live();
    await handle.signal('approve', { approver: 'alice', reason: 'conflict' });
    const f = await runFailure(handle);
    await rm(fake);
    expect(f.type).toBe('RecoveryFailed');
    expect(f.message).toContain(`WAL segment ${seg} differs between the archive`);
    expect(f.message).toContain(join(setup.cluster.dataDir, 'pg_wal', seg));
    const ran = await scheduledActivities(handle);
    expect(ran).toContain('gatherUnarchivedWal');
    expect(ran).not.toContain('swapDataDirectory');
    expect(await live()).toEqual(before); // running again, in the same data directory, on the same timeline
    expect(await tags()).toEqual(['before', 'b', 'unarchived', 'last', 'd']);
  });
  it("(e) follows the live cluster's timeline past a newer branch a rolled-back recovery left in the archive", async () => {
    // Archiving works again.
    const archiveCommand = `PGWARDEN_FROM_SOURCE=1 ${PGWARDEN} --config ${setup.configFile} wal-push --cluster main %p %f`;
    await setup.cluster.query(`ALTER SYSTEM SET archive_command = '${archiveCommand}'`);
    await setup.cluster.query('SELECT pg_reload_conf()');
    await switchAndArchive(setup.cluster);
    const [{ seg, lsn }] = (await setup.cluster.query<{ seg: string; lsn: string }>(
      'SELECT pg_walfile_name(pg_current_wal_lsn()) AS seg, pg_current_wal_lsn()::text AS lsn',
    )) as [{ seg: string; lsn: string }];
    const liveTli = parseInt(seg.slice(0, 8), 16);
    // What a promoted, then rolled-back recovery leaves: the next timeline's history file in the
    // archive, branching from the live timeline here, while the cluster goes on on its own timeline.
    const hex = (t: number) => t.toString(16).toUpperCase().padStart(8, '0');
    const own = await readFile(join(setup.cluster.dataDir, 'pg_wal', `${hex(liveTli)}.history`), 'utf8');
    const scratch = await mkdtemp(join(tmpdir(), 'pgwarden-branch-'));
    try {
      await chmod(scratch, 0o755);
      const branch = join(scratch, `${hex(liveTli + 1)}.history`);
      await writeFile(branch, `${own}${liveTli}\t${lsn}\tno recovery target specified (rolled back)\n`);
      await chmod(branch, 0o644);
      await execa('runuser', [
        '-u',
        'postgres',
        '--',
        'env',
        'PGWARDEN_FROM_SOURCE=1',
        PGWARDEN,
        '--config',
        setup.configFile,
        'wal-push',
        '--cluster',
        'main',
        branch,
        `${hex(liveTli + 1)}.history`,
      ]);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
    await q(`INSERT INTO rows (tag) VALUES ('e-kept')`);
    const targetT = await serverNow();
    await sleep(50);
    await q(`INSERT INTO rows (tag) VALUES ('e-after')`);
    const handle = await startPitr({ cluster: 'main', target: { time: targetT } });
    const result = await approve(handle);
    expect(result).toMatchObject({ outcome: 'recovered' });
    expect(await activityResult(handle, 'planRecovery')).toMatchObject({ targetTimeline: liveTli });
    expect(await tags()).toEqual(['before', 'b', 'unarchived', 'last', 'd', 'e-kept']);
    // Promoted past the abandoned branch's timeline id, and archiving goes on (no clash with the
    // branch's history file already in the archive).
    const [{ now }] = (await setup.cluster.query<{ now: string }>(
      'SELECT pg_walfile_name(pg_current_wal_lsn()) AS now',
    )) as [{ now: string }];
    expect(parseInt(now.slice(0, 8), 16)).toBe(liveTli + 2);
    await switchAndArchive(setup.cluster);
    expect(await readdir(join(setup.repository, 'main/wal'))).toContain(`${hex(liveTli + 2)}.history.json`);
  });
  it('(f) a pre-stop hook that fails: the run fails, the applications are started again, the cluster runs on untouched', async () => {
    const marks = join(setup.dir, 'hook-marks.log');
    const hooked = structuredClone(setup.config);
    hooked.clusters.main!.archiveWaitSeconds = WAIT_SECONDS;
    hooked.clusters.main!.hooks = {
      preRestore: ['sh', '-c', `echo pre >> ${marks}; echo applications would not stop >&2; exit 3`],
      postRestore: ['sh', '-c', `echo post >> ${marks}`],
    };
    await worker.stop();
    worker = await startPgwardenWorker(env, hooked, testSecrets(setup.cluster, key));
    const before = { ...(await live()), rows: await tags() };
    const kept = await siblings();
    const handle = await startPitr({ cluster: 'main', target: { latest: true } });
    await waitForStep(handle, 'approve');
    expect((await siblings()).filter((f) => !kept.includes(f))).toEqual([expect.stringMatching(/\.pgwarden-pitr-/)]); // staged
    await handle.signal('approve', { approver: 'alice', reason: 'hook fails' });
    const f = await runFailure(handle);
    expect(f.type).toBe('RecoveryFailed');
    expect(f.message).toContain('applications would not stop');
    expect(f.message).toContain('the original data directory is in place and running');
    expect((await readFile(marks, 'utf8')).trim().split('\n')).toEqual(['pre', 'post']);
    const ran = await scheduledActivities(handle);
    expect(ran).not.toContain('swapDataDirectory');
    expect({ ...(await live()), rows: await tags() }).toEqual(before);
    expect(await siblings()).toEqual(kept); // the staged copy is removed, nothing left beside the data directory
  });
  it('(g) an LSN and a restore point made after the last archived segment, archiver working: plan waits, the in-place recovery reaches each', async () => {
    const plain = structuredClone(setup.config);
    plain.clusters.main!.archiveWaitSeconds = WAIT_SECONDS;
    await worker.stop();
    worker = await startPgwardenWorker(env, plain, testSecrets(setup.cluster, key));
    const targets: [string, (tag: string) => Promise<PointInTimeRecoveryInput['target']>][] = [
      [
        'g-lsn',
        async () => ({
          lsn: (await setup.cluster.query<{ lsn: string }>(`SELECT pg_current_wal_insert_lsn()::text AS lsn`))[0]!.lsn,
        }),
      ],
      [
        'g-point',
        async (tag) => (await setup.cluster.query(`SELECT pg_create_restore_point('${tag}')`), { name: tag }),
      ],
    ];
    for (const [tag, mark] of targets) {
      await switchAndArchive(setup.cluster); // everything so far is archived; what follows is not yet
      const rowsBefore = await tags();
      const timeline = (await live()).timeline;
      await q(`INSERT INTO rows (tag) VALUES ('${tag}-kept')`);
      const target = await mark(tag);
      await q(`INSERT INTO rows (tag) VALUES ('${tag}-after')`);
      const handle = await startPitr({ cluster: 'main', target });
      const result = await approve(handle);
      expect(result, tag).toMatchObject({ outcome: 'recovered' });
      expect(
        (await scheduledActivities(handle)).filter((a) => a === 'planRecovery').length,
        tag,
      ).toBeGreaterThanOrEqual(2); // it waited
      expect(await tags()).toEqual([...rowsBefore, `${tag}-kept`]);
      expect((await live()).timeline).toBeGreaterThan(timeline);
      expect((await live()).inRecovery).toBe(false);
    }
  });
  it("(h) clusters.main.logFile, a file the operator made postgres:adm 0640: after a PITR it keeps its owner, group and mode, and gets the recovered server's lines", async () => {
    // As Debian's /var/log/postgresql/postgresql-15-main.log: logrotate and the adm group read it.
    const logFile = join(setup.dir, 'postgresql-main.log');
    await writeFile(logFile, "an earlier line of the operator's log\n", { mode: 0o640 });
    await chmod(logFile, 0o640);
    const root = process.getuid?.() === 0;
    if (root) await execa('chown', ['postgres:adm', logFile]);
    const owned = await stat(logFile);
    const configured = structuredClone(setup.config);
    configured.clusters.main!.archiveWaitSeconds = WAIT_SECONDS;
    configured.clusters.main!.logFile = logFile;
    await worker.stop();
    worker = await startPgwardenWorker(env, configured, testSecrets(setup.cluster, key));
    await q(`INSERT INTO rows (tag) VALUES ('h-kept')`);
    await sleep(1100);
    const targetT = await serverNow();
    await sleep(1100);
    await q(`INSERT INTO rows (tag) VALUES ('h-after')`);
    await switchAndArchive(setup.cluster);
    const before = owned.size;
    const result = await approve(await startPitr({ cluster: 'main', target: { time: targetT } }));
    expect(result).toMatchObject({ outcome: 'recovered' });
    expect((await tags()).slice(-1)).toEqual(['h-kept']);
    const after = await stat(logFile);
    expect({ uid: after.uid, gid: after.gid, mode: after.mode & 0o777 }).toEqual({
      uid: owned.uid,
      gid: owned.gid,
      mode: 0o640,
    });
    if (root) expect(after.gid).toBe(Number((await execa('getent', ['group', 'adm'])).stdout.split(':')[2]));
    const text = await readFile(logFile, 'utf8');
    expect(text.startsWith("an earlier line of the operator's log\n")).toBe(true); // appended to, never replaced
    const fresh = text.slice(before);
    expect(fresh).toContain(result.recovery!.stoppedAt!);
    expect(fresh).toMatch(/database system is ready to accept connections/);
    // pgwarden waited for the promotion without knocking while the server started (each knock a FATAL line).
    expect(fresh).not.toMatch(/FATAL: +the database system is (starting up|not yet accepting connections)/);
    // And it goes on receiving the server's lines.
    await q('SELECT pgwarden_after_pitr_logfile()').catch(() => undefined);
    for (let i = 0; !(await readFile(logFile, 'utf8')).slice(before).includes('pgwarden_after_pitr_logfile'); i++) {
      if (i > 75) throw new Error(`${logFile} did not receive the failing statement`);
      await sleep(200);
    }
  });
});

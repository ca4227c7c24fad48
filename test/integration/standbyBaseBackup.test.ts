// Base backups from a real streaming standby of a primary that archives through wal-push.
// pg_basebackup runs against the standby; a standby neither switches WAL nor (archive_mode = on)
// waits for archiving, so pgwarden switches on the primary and waits until every segment of the
// backup is in the archive before it commits the backup: the last one is not archived before the run
// and is after it. A PITR rehearsal from that backup reaches a row the primary wrote after it. A
// standby paused past the lag limit: the base backup comes from the primary (with backupFrom
// "standby", none is taken). A segment missing inside the range, or an archiver that fails: the wait
// ends in a retryable failure naming the segment (and pg_stat_archiver). A standby with archive_mode =
// always (pg_basebackup itself then waits for its archiving) on a quiet primary: the run switches the
// primary for it; such a standby that cannot archive: one switch, then a failure naming its archiver.
import { spawn } from 'node:child_process';
import { appendFile, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBaseBackupActivities } from '../../src/activities/baseBackup.js';
import { sourceRef } from '../../src/activities/backupSource.js';
import { archiveStopSegment, lastSegmentOf, switchWhileStandbyWaits } from '../../src/activities/baseFromStandby.js';
import { parseBaseManifest, type BackupSourceRecord } from '../../src/lib/manifest.js';
import { libpqEnv, pgTool } from '../../src/postgres/connection.js';
import { formatLsn, parseLsn, parseSegmentName, segmentName, segmentOf } from '../../src/lib/wal.js';
import type { BaseBackupWorkflowResult } from '../../src/workflows/baseBackup.js';
import type { PointInTimeRecoveryResult } from '../../src/workflows/pointInTimeRecovery.js';
import { startArchivingCluster, switchAndArchive, type ArchivingSetup } from '../helpers/archiving.js';
import { testSecrets } from '../helpers/config.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { startStandby, waitStreaming, type TestStandby } from '../helpers/standby.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

let setup: ArchivingSetup;
let standby: TestStandby;
let key: TestKey;
let env: TestWorkflowEnvironment;
let worker: RunningWorker;
const queue = uniqueQueue('standby-base');

const baseBackup = async (backupId: string) =>
  (await env.client.workflow.execute('baseBackup', {
    taskQueue: queue,
    workflowId: `${queue}/${backupId}`,
    args: [{ cluster: 'main', backupId }],
  })) as BaseBackupWorkflowResult;
async function until(ok: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300 && !(await ok()); i++) await new Promise((r) => setTimeout(r, 100));
}
const manifestOf = async (backupId: string) =>
  parseBaseManifest(await readFile(join(setup.repository, 'main/base', backupId, 'manifest.json'), 'utf8'));

/** A row and a CHECKPOINT on the primary, replayed by the standby; the segment the primary then writes. */
async function checkpointReplayed(note: string): Promise<string> {
  await setup.cluster.query(`INSERT INTO marks VALUES ('${note}'); CHECKPOINT`, 'app');
  const { lsn, current } = (
    await setup.cluster.query<{ lsn: string; current: string }>(
      'SELECT pg_current_wal_lsn()::text AS lsn, pg_walfile_name(pg_current_wal_lsn()) AS current',
    )
  )[0]!;
  await until(
    async () => (await standby.query<{ ok: boolean }>(`SELECT pg_last_wal_replay_lsn() >= '${lsn}' AS ok`))[0]!.ok,
  );
  return current;
}

beforeAll(async () => {
  [key, env] = await Promise.all([createTestKey(), testEnvironment()]);
  setup = await startArchivingCluster({
    taskQueue: queue,
    key,
    extra: {
      verification: {
        checks: { app: [{ name: 'row after', sql: "SELECT count(*) FROM marks WHERE note = 'after'", min: 1 }] },
      },
    },
  });
  await setup.cluster.query('CREATE DATABASE app');
  await setup.cluster.query(`CREATE TABLE marks (note text); INSERT INTO marks VALUES ('before')`, 'app');
  standby = await startStandby(setup.cluster, 'replica1');
  setup.config.clusters.main!.standbys = [{ name: 'replica1', host: standby.host, port: standby.port }];
  worker = await startPgwardenWorker(env, setup.config, testSecrets(setup.cluster, key));
}, 180_000);

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await standby?.remove();
  await Promise.all([setup?.remove(), key?.remove()]);
});

it('a base backup from the standby, its WAL archived; a PITR rehearsal from it reaches a later row', async () => {
  // A write and a checkpoint on the (then quiet) primary, replayed by the standby: the standby's
  // backup ends inside the segment the primary still writes, which is not archived before the run.
  const current = await checkpointReplayed('checkpointed');
  expect(await readdir(join(setup.repository, 'main/wal'))).not.toContain(`${current}.json`);
  const backup = await baseBackup('20261125T050000Z');
  expect(backup).toMatchObject({ reused: false, source: { role: 'standby', name: 'replica1', port: standby.port } });
  const manifest = await manifestOf('20261125T050000Z');
  expect(manifest.source).toMatchObject({ role: 'standby', name: 'replica1', lagBytes: expect.any(Number) });
  expect(manifest.stopLsn).not.toMatch(/\/[0-9A-F]?000000$/);
  // The run itself had the segment finished and archived before it committed the backup.
  const last = lastSegmentOf(manifest.timeline, manifest.stopLsn);
  expect(last).toBe(current);
  expect(await readdir(join(setup.repository, 'main/wal'))).toContain(`${last}.json`);

  await setup.cluster.query(`INSERT INTO marks VALUES ('after')`, 'app');
  await setup.cluster.query(`SELECT pg_create_restore_point('after-standby-base')`, 'app');
  await switchAndArchive(setup.cluster);
  const result = (await env.client.workflow.execute('pointInTimeRecovery', {
    taskQueue: queue,
    workflowId: `${queue}/pitr`,
    args: [{ cluster: 'main', target: { name: 'after-standby-base' }, mode: 'rehearsal' }],
  })) as PointInTimeRecoveryResult;
  expect(result).toMatchObject({ outcome: 'rehearsed', backupId: '20261125T050000Z' });
}, 240_000);

it('a standby paused past the lag limit: the base backup comes from the primary', async () => {
  await standby.query('SELECT pg_wal_replay_pause()');
  try {
    // ~3 MB of WAL the paused standby receives but does not replay (the limit is 1 MiB).
    await setup.cluster.query(`INSERT INTO marks SELECT repeat('x', 100) FROM generate_series(1, 20000)`, 'app');
    const backup = await baseBackup('20261125T060000Z');
    expect(backup.source).toMatchObject({ role: 'primary', reason: expect.stringContaining('replica1') });
    expect((await manifestOf('20261125T060000Z')).source).toMatchObject({ role: 'primary' });
    // backupFrom "standby": no base backup at all, and the reason is named.
    const only = structuredClone(setup.config);
    only.clusters.main!.backupFrom = 'standby';
    const { preflightBaseBackup } = createBaseBackupActivities({ config: only, env: testSecrets(setup.cluster, key) });
    await expect(preflightBaseBackup({ cluster: 'main', backupId: '20261125T063000Z' })).rejects.toMatchObject({
      type: 'StandbyUnavailable',
      nonRetryable: true,
      message: expect.stringMatching(/replica1.*paused/),
    });
  } finally {
    await standby.query('SELECT pg_wal_replay_resume()');
  }
}, 120_000);

it("a hole in the archive inside a backup's range: the wait names the missing segment, not only the last; another timeline is refused", async () => {
  // wal-push with async pushes two at a time: a later segment can be archived while an earlier one failed.
  const dir = join(setup.repository, 'main/wal');
  const segs = (await readdir(dir)).filter((n) => /^00000001[0-9A-F]{16}\.json$/.test(n)).map((n) => n.slice(0, 24));
  const at = segs.findIndex(
    (n, i) => i + 2 < segs.length && segs[i + 2] === segmentName(1, parseSegmentName(n)!.segment + 2n),
  );
  expect(at).toBeGreaterThanOrEqual(0);
  const [first, hole, last] = segs.slice(at, at + 3) as [string, string, string];
  const lsnIn = (name: string, offset: bigint) =>
    formatLsn(parseSegmentName(name)!.segment * 16n * 1024n * 1024n + offset);
  const wait = (timeoutMs: number, timeline = 1) =>
    archiveStopSegment({
      config: setup.config,
      env: testSecrets(setup.cluster, key),
      cluster: 'main',
      timeline,
      startLsn: lsnIn(first, 40n),
      stopLsn: lsnIn(last, 4096n),
      beat: () => undefined,
      signal: new AbortController().signal,
      timeoutMs,
    });
  await rename(join(dir, `${hole}.json`), join(dir, `${hole}.json.aside`));
  try {
    await expect(wait(1500)).rejects.toMatchObject({
      type: 'WalNotArchived',
      message: expect.stringContaining(`has not archived ${hole} of the WAL segments ${first}..${last}`),
    });
  } finally {
    await rename(join(dir, `${hole}.json.aside`), join(dir, `${hole}.json`));
  }
  await expect(wait(1500)).resolves.toBe(last);
  // A backup on another timeline than the primary's (its standby followed another primary): refused
  // for good, before any switch or wait; a retry from the same standby would not change it.
  await expect(wait(60_000, 2)).rejects.toMatchObject({
    type: 'StandbyUnavailable',
    nonRetryable: true,
    message: expect.stringMatching(/timeline 2, the primary of "main" on timeline 1/),
  });
}, 30_000);

it('the primary not archiving: the wait for the last segment ends in a retryable failure naming the archiver', async () => {
  const { restore } = (
    await setup.cluster.query<{ restore: string }>(
      `SELECT format('ALTER SYSTEM SET archive_command = %L', current_setting('archive_command')) AS restore`,
    )
  )[0]!;
  await setup.cluster.query(`ALTER SYSTEM SET archive_command = 'false'`);
  await setup.cluster.query('SELECT pg_reload_conf()');
  try {
    await setup.cluster.query(`INSERT INTO marks VALUES ('unarchived')`, 'app');
    const { lsn } = (await setup.cluster.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn'))[0]!;
    const beats: string[] = [];
    const err = await archiveStopSegment({
      config: setup.config,
      env: testSecrets(setup.cluster, key),
      cluster: 'main',
      timeline: 1,
      startLsn: lsn,
      stopLsn: lsn,
      beat: (s) => beats.push(s),
      signal: new AbortController().signal,
      timeoutMs: 3000,
    }).catch((e: unknown) => e as Error);
    const last = lastSegmentOf(1, lsn);
    expect(err).toMatchObject({ type: 'WalNotArchived', nonRetryable: false });
    expect((err as Error).message).toMatch(
      new RegExp(`has not archived ${last}.*pg_stat_archiver: .*last failed ${last}`),
    );
    expect(beats.length).toBeGreaterThan(2);
  } finally {
    await setup.cluster.query(restore);
    await setup.cluster.query('SELECT pg_reload_conf()');
  }
}, 60_000);

it('a standby with archive_mode = always: pg_basebackup waits for its archiving, and the primary is switched for it', async () => {
  await appendFile(join(standby.dataDir, 'postgresql.auto.conf'), `archive_mode = 'always'\n`);
  await standby.stop();
  await standby.start();
  await waitStreaming(setup.cluster, 'replica1');
  // A checkpoint after a write: the standby's backup ends past it, inside a segment the (otherwise
  // quiet) primary has not finished; only a switch on the primary lets the standby archive it.
  await setup.cluster.query(`INSERT INTO marks VALUES ('always'); CHECKPOINT`, 'app');
  const { lsn } = (await setup.cluster.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn'))[0]!;
  await until(
    async () => (await standby.query<{ ok: boolean }>(`SELECT pg_last_wal_replay_lsn() >= '${lsn}' AS ok`))[0]!.ok,
  );
  const backup = await baseBackup('20261125T070000Z');
  expect(backup.source).toMatchObject({ role: 'standby' });
  expect(backup.stopLsn).not.toMatch(/\/[0-9A-F]?000000$/);
  expect((await standby.query<{ m: string }>(`SELECT current_setting('archive_mode') AS m`))[0]!.m).toBe('always');
}, 90_000);

it('a standby with archive_mode = always that cannot archive: one switch of the primary, then the backup fails naming its archiver', async () => {
  await standby.query(`ALTER SYSTEM SET archive_command = 'false'`);
  await standby.query('SELECT pg_reload_conf()');
  try {
    const before = await checkpointReplayed('stuck');
    const ref = sourceRef(setup.config, 'main', { role: 'standby', name: 'replica1' } as BackupSourceRecord);
    const env = testSecrets(setup.cluster, key);
    const appName = 'pgwarden base stuck';
    const tool = spawn(pgTool('pg_basebackup', ref.config), ['-D', '-', '-Ft', '-Xnone', '-cfast', '-w'], {
      env: { ...process.env, ...libpqEnv(ref, ref.config.maintenanceDatabase, env), PGAPPNAME: appName },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => tool.on('close', (code) => r(code)));
    const failed = new Promise<Error>((fail) => {
      const stop = switchWhileStandbyWaits({
        ...{ config: setup.config, env, cluster: 'main', standby: ref, applicationName: appName },
        fail: (e) => (stop(), fail(e)),
        intervalMs: 300,
        waitTimeoutMs: 4000,
      });
    });
    // A trickle of writes on the primary: every switch would start (and archive) another segment.
    const trickle = setInterval(
      () => void setup.cluster.query(`INSERT INTO marks VALUES ('trickle')`, 'app').catch(() => undefined),
      200,
    );
    const err = await failed.finally(() => clearInterval(trickle));
    expect(err).toMatchObject({ type: 'WalNotArchived', nonRetryable: false });
    expect(err.message).toMatch(
      new RegExp(`standby main/replica1 .*has not archived ${before}.*last failed ${before}`),
    );
    // Its WAL sender ended, pg_basebackup fails; the primary was switched once, not every 300 ms.
    expect(await exited).not.toBe(0);
    const { after } = (await setup.cluster.query<{ after: string }>('SELECT pg_current_wal_lsn()::text AS after'))[0]!;
    expect(segmentOf(parseLsn(after))).toBe(parseSegmentName(before)!.segment + 1n);
  } finally {
    await standby.query(`ALTER SYSTEM RESET archive_command`);
    await standby.query('SELECT pg_reload_conf()');
  }
}, 60_000);

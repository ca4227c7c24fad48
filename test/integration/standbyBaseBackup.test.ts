// Base backups from a real streaming standby of a primary that archives through wal-push.
// pg_basebackup runs against the standby; a standby neither switches WAL nor (archive_mode = on)
// waits for archiving, so pgwarden switches on the primary and waits until the backup's last
// segment is in the archive before it commits the backup. A PITR rehearsal from that backup reaches
// a row the primary wrote after it. A standby paused past the lag limit: the base backup comes from
// the primary (with backupFrom "standby", none is taken). A standby with archive_mode = always (pg_basebackup itself then waits for its
// archiving) on a quiet primary: the run switches the primary for it. An archiver that fails: the
// wait ends in a retryable failure naming pg_stat_archiver.
import { appendFile, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBaseBackupActivities } from '../../src/activities/baseBackup.js';
import { archiveStopSegment, lastSegmentOf } from '../../src/activities/baseFromStandby.js';
import { parseBaseManifest } from '../../src/lib/manifest.js';
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
  const backup = await baseBackup('20261125T050000Z');
  expect(backup).toMatchObject({ reused: false, source: { role: 'standby', name: 'replica1', port: standby.port } });
  const manifest = await manifestOf('20261125T050000Z');
  expect(manifest.source).toMatchObject({ role: 'standby', name: 'replica1', lagBytes: expect.any(Number) });
  // The standby's backup: its label says it was taken in recovery.
  expect((await standby.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'))[0]!.r).toBe(true);
  // Before anything else switches WAL: the backup's last segment is already in the archive. (Here the
  // standby's last replayed record is the WAL switch ending its own pg_basebackup: the backup stops
  // exactly at a segment boundary, 0/3000000, and needs segment 2, not 3, which nothing fills.)
  const last = lastSegmentOf(manifest.timeline, manifest.stopLsn);
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

// Point-in-time recovery against a real PostgreSQL 15 cluster that archives through `pgwarden
// wal-push`, and the real Temporal dev server: base backup; batch A; time T; the accident (rows
// deleted, a table dropped); batch C; PITR to T — as a rehearsal, then in place (approved) — brings
// back A and the table without C, on a new timeline; a second PITR on that timeline works too.
// Reject and timeout touch nothing; a WAL file lost after planning makes recovery fail and roll
// back to the original data directory; bad targets fail in plan with nothing stopped.
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BaseBackupWorkflowResult } from '../../src/workflows/baseBackup.js';
import type { PointInTimeRecoveryInput, PointInTimeRecoveryResult } from '../../src/workflows/pointInTimeRecovery.js';
import { startArchivingCluster, switchAndArchive, type ArchivingSetup } from '../helpers/archiving.js';
import { testSecrets } from '../helpers/config.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { activityAttempts, IN_PLACE_STEPS, ownQueues, waitForStep } from '../helpers/pitr.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';
import { spawnWorker } from '../helpers/workerProcess.js';
import { runFailure } from '../helpers/workflowRuns.js';

let setup: ArchivingSetup;
let key: TestKey;
let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let targetT: string;
const queue = uniqueQueue('pitr');
let runs = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const q = <T extends Record<string, unknown>>(sql: string) => setup.cluster.query<T>(sql, 'app');
const state = async () => {
  const [row] = await q<{ a: string; c: string; d: string; other: boolean; tli: number; rec: boolean }>(
    `SELECT (SELECT count(*) FROM items WHERE batch = 'A')::text AS a,
            (SELECT count(*) FROM items WHERE batch = 'C')::text AS c,
            (SELECT count(*) FROM items WHERE batch = 'D')::text AS d,
            to_regclass('public.other') IS NOT NULL AS other,
            (SELECT timeline_id FROM pg_control_checkpoint()) AS tli,
            pg_is_in_recovery() AS rec`,
  );
  return {
    a: Number(row!.a),
    c: Number(row!.c),
    d: Number(row!.d),
    other: row!.other,
    timeline: row!.tli,
    inRecovery: row!.rec,
  };
};
const serverNow = async () =>
  (
    await q<{ t: string }>(
      `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t`,
    )
  )[0]!.t;

beforeAll(async () => {
  [key, env] = await Promise.all([createTestKey(), testEnvironment()]);
  setup = await startArchivingCluster({
    taskQueue: queue,
    key,
    extra: {
      verification: {
        // The recovered server must hold batch A in full and the dropped table (checked in `verify`).
        checks: {
          app: [
            { name: 'batch A', sql: "SELECT count(*) FROM items WHERE batch = 'A'", min: 100 },
            { name: 'table other', sql: 'SELECT count(*) FROM other', min: 1 },
          ],
        },
      },
    },
  });
  await setup.cluster.query('CREATE DATABASE app');
  await q(
    `CREATE TABLE items (id serial PRIMARY KEY, batch text NOT NULL); CREATE TABLE other (x int); INSERT INTO other VALUES (1)`,
  );
  worker = await startPgwardenWorker(env, setup.config, testSecrets(setup.cluster, key));
}, 120_000);

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

describe('pointInTimeRecovery', () => {
  it('takes a base backup, then the accident happens', async () => {
    const backup = (await env.client.workflow.execute('baseBackup', {
      taskQueue: queue,
      workflowId: `${queue}/base`,
      args: [{ cluster: 'main', backupId: '20261122T030000Z' }],
    })) as BaseBackupWorkflowResult;
    expect(backup).toMatchObject({ cluster: 'main', backupId: '20261122T030000Z', timeline: 1, reused: false });
    expect(backup.retention).toMatchObject({
      keep: [{ backupId: '20261122T030000Z', reasons: expect.arrayContaining(['pitr-window', 'minimum']) }],
      delete: [],
    });
    const files = await readdir(join(setup.repository, 'main/base/20261122T030000Z'));
    expect(files.sort()).toEqual(['backup_manifest', 'base.tar.zst.gpg', 'manifest.json']);

    await q(`INSERT INTO items (batch) SELECT 'A' FROM generate_series(1, 100)`);
    await q(`SELECT pg_create_restore_point('before-accident')`);
    await sleep(1100);
    targetT = await serverNow();
    await sleep(1100);
    await switchAndArchive(setup.cluster);
    // The accident, then later work that the recovery must not bring back.
    await q(`DELETE FROM items WHERE batch = 'A' AND id % 2 = 0; DROP TABLE other`);
    await q(`INSERT INTO items (batch) SELECT 'C' FROM generate_series(1, 10)`);
    await switchAndArchive(setup.cluster);
    expect(await state()).toMatchObject({ a: 50, c: 10, other: false, timeline: 1 });
  });

  it('rehearses the recovery on a scratch copy without touching the live cluster', async () => {
    const handle = await startPitr({ cluster: 'main', target: { time: targetT }, mode: 'rehearsal' });
    const result = (await handle.result()) as PointInTimeRecoveryResult;
    expect(result).toMatchObject({ outcome: 'rehearsed', mode: 'rehearsal', backupId: '20261122T030000Z' });
    expect(result.recovery!.timeline).toBe(2);
    expect(result.recovery!.stoppedAt).toMatch(/recovery stopping before commit/);
    expect(result.steps.map((s) => s.step)).toEqual(['plan', 'stage', 'recover', 'verify']);
    expect(await state()).toMatchObject({ a: 50, c: 10, other: false, timeline: 1 }); // live: untouched
    expect((await readdir(join(setup.cluster.dataDir, '..'))).filter((f) => f.includes('rehearsal'))).toEqual([]);
  });

  it('rehearses to a named restore point', async () => {
    const result = (await (
      await startPitr({ cluster: 'main', target: { name: 'before-accident' }, mode: 'rehearsal' })
    ).result()) as PointInTimeRecoveryResult;
    expect(result).toMatchObject({ outcome: 'rehearsed', target: 'restore point "before-accident"' });
    expect(result.recovery!.stoppedAt).toMatch(/recovery stopping at restore point "before-accident"/);
  });

  it('leaves the live cluster running and untouched when rejected or unanswered', async () => {
    const rejected = await startPitr({ cluster: 'main', target: { time: targetT } });
    const waiting = await waitForStep(rejected, 'approve');
    expect(waiting.detail).toMatch(/pgwarden approve .* --approver NAME --reason TEXT/);
    await rejected.signal('reject', { approver: 'alice', reason: 'not this one' });
    expect(await rejected.result()).toMatchObject({
      outcome: 'rejected',
      decision: { approved: false, approver: 'alice' },
    });
    const timedOut = await startPitr({ cluster: 'main', target: { time: targetT }, approvalTimeout: '2 seconds' });
    expect(await timedOut.result()).toMatchObject({ outcome: 'timed-out' });
    expect(await state()).toMatchObject({ a: 50, c: 10, other: false, timeline: 1, inRecovery: false });
  });

  it('rolls back to the original data directory when the WAL is lost after the replay before the approval', async () => {
    const handle = await startPitr({ cluster: 'main', target: { time: targetT } });
    await waitForStep(handle, 'approve');
    const work = (await readdir(join(setup.cluster.dataDir, '..'))).find((f) => f.includes('pgwarden-pitr-'))!;
    // Staged and in the replayed copy's pg_wal: the start after the approval finds no checkpoint to begin from.
    for (const dir of ['wal', 'data/pg_wal']) {
      const walDir = join(setup.cluster.dataDir, '..', work, dir);
      for (const f of (await readdir(walDir)).filter((f) => /^[0-9A-F]{24}$/.test(f))) await rm(join(walDir, f));
    }
    await handle.signal('approve', { approver: 'alice', reason: 'drill' });
    const failed = await runFailure(handle);
    expect(failed.type).toBe('RecoveryFailed');
    expect(failed.message).toMatch(/rolled back/);
    expect(await state()).toMatchObject({ a: 50, c: 10, other: false, timeline: 1, inRecovery: false });
  });

  it('refuses bad targets in plan, with nothing stopped', async () => {
    const cases: [PointInTimeRecoveryInput['target'], string, RegExp][] = [
      [{ time: '2099-01-01 00:00:00+00' }, 'BadTarget', /in the future/],
      [{ time: '2020-01-01 00:00:00+00' }, 'BadTarget', /before the oldest usable base backup/],
      [{ time: '2026-11-22 14:31:00' }, 'BadTarget', /no time zone/],
      [{ lsn: 'not-an-lsn' }, 'BadTarget', /not an LSN/],
      // Plan switches WAL and waits until that segment is archived: then it knows the point does not exist.
      [
        { name: 'no-such-point' },
        'BadTarget',
        /restore point "no-such-point" is not reached by the archived WAL: .* holds no restore point "no-such-point"; everything the server had written when plan switched WAL/,
      ],
    ];
    for (const [target, type, message] of cases) {
      const f = await runFailure(await startPitr({ cluster: 'main', target }));
      expect(f.type, JSON.stringify(target)).toBe(type);
      expect(f.message).toMatch(message);
    }
    // A segment missing from the archive between the base backup and the target: a WAL gap.
    const walDir = join(setup.repository, 'main/wal');
    const records = (await readdir(walDir)).filter((f) => /^[0-9A-F]{24}\.json$/.test(f)).sort();
    const hidden = join(setup.dir, 'hidden.json');
    await rename(join(walDir, records[1]!), hidden);
    try {
      const f = await runFailure(await startPitr({ cluster: 'main', target: { time: targetT } }));
      expect(f.type).toBe('WalGap');
      expect(f.message).toContain(`WAL segment ${records[1]!.slice(0, 24)} is missing from the archive`);
    } finally {
      await rename(hidden, join(walDir, records[1]!));
    }
    expect(await state()).toMatchObject({ a: 50, c: 10, inRecovery: false });
  });

  it('recovers in place when approved: batch A and the table are back, batch C is not, on a new timeline', async () => {
    const handle = await startPitr({ cluster: 'main', target: { time: targetT } });
    await waitForStep(handle, 'approve');
    await handle.signal('approve', { approver: 'alice', reason: 'INC-42' });
    const result = (await handle.result()) as PointInTimeRecoveryResult;
    expect(result).toMatchObject({
      outcome: 'recovered',
      decision: { approved: true, approver: 'alice', reason: 'INC-42' },
    });
    expect(result.steps.map((s) => s.step)).toEqual(IN_PLACE_STEPS);
    expect(result.previousDataDirectory).toMatch(/\.pre-pitr-/);
    expect(await state()).toMatchObject({ a: 100, c: 0, other: true, timeline: 2, inRecovery: false });
    // The recovery settings are gone from postgresql.auto.conf; the old data directory is kept.
    const [settings] = await q<{ rc: string }>(`SELECT current_setting('restore_command') AS rc`);
    expect(settings!.rc).toBe('');
    expect((await readdir(join(setup.cluster.dataDir, '..'))).some((f) => f.includes('.pre-pitr-'))).toBe(true);
  });

  it('recovers again on the new timeline (timeline history from the archive)', async () => {
    await q(`INSERT INTO items (batch) SELECT 'D' FROM generate_series(1, 7)`);
    await sleep(1100);
    const t2 = await serverNow();
    await sleep(1100);
    await switchAndArchive(setup.cluster);
    await q(`DELETE FROM items WHERE batch = 'D'`);
    await switchAndArchive(setup.cluster);
    const handle = await startPitr({ cluster: 'main', target: { time: t2 } });
    await waitForStep(handle, 'approve');
    await handle.signal('approve', { approver: 'bob', reason: 'second drill' });
    const result = (await handle.result()) as PointInTimeRecoveryResult;
    expect(result.outcome).toBe('recovered');
    expect(await state()).toMatchObject({ a: 100, c: 0, d: 7, other: true, timeline: 3, inRecovery: false });
  });
});

describe('pointInTimeRecovery with a worker killed during recover', () => {
  it('finishes on a new worker: the running recovery is picked up, not started over', async () => {
    const crashQueue = uniqueQueue('pitr-crash');
    const config = ownQueues(setup.config, crashQueue);
    const configFile = join(setup.dir, 'crash.json');
    const secrets = testSecrets(setup.cluster, key);
    const first = await spawnWorker(configFile, config, secrets);
    const handle = await env.client.workflow.start('pointInTimeRecovery', {
      taskQueue: crashQueue,
      workflowId: `${crashQueue}/pitr`,
      args: [{ cluster: 'main', target: { latest: true }, mode: 'rehearsal' }],
    });
    await waitForStep(handle, 'recover');
    await first.kill('SIGKILL');
    const second = await spawnWorker(configFile, config, secrets);
    try {
      const result = (await handle.result()) as PointInTimeRecoveryResult;
      expect(result.outcome).toBe('rehearsed');
      expect(result.recovery!.timeline).toBe(4);
    } finally {
      await second.kill('SIGTERM');
    }
    // The recover activity ran a second attempt (on the new worker).
    expect(await activityAttempts(handle, 'recover')).toEqual([2]);
    expect((await readdir(join(setup.cluster.dataDir, '..'))).filter((f) => f.includes('rehearsal'))).toEqual([]);
  }, 240_000);
});

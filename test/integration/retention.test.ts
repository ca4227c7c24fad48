// Local retention with an offsite repository, against a real PostgreSQL 15 cluster archiving its WAL,
// the real Temporal dev server and a real sshd with rsync, as an operator who once lost the only
// copy would test it: before the offsite check has confirmed a backup, nothing is deleted locally
// (the backup's own retention, the `pgwarden retention` plan and --apply all say it waits, naming
// the repository); after offsiteSync's check, the plan names what goes and why, and --apply deletes
// exactly that: the old logical and base backups and the WAL only they needed, never the newest
// base backup's WAL. What waits is heard: healthCheck alerts once it waited past its grace period.
import { access, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { LocalRetentionResult } from '../../src/activities/retention.js';
import { parseLsn, segmentOf } from '../../src/lib/wal.js';
import type { BaseBackupWorkflowResult } from '../../src/workflows/baseBackup.js';
import type { FullBackupResult } from '../../src/workflows/fullBackup.js';
import type { HealthCheckResult } from '../../src/workflows/healthCheck.js';
import type { OffsiteSyncResult } from '../../src/workflows/offsiteSync.js';
import type { RetentionRunResult } from '../../src/workflows/retention.js';
import type { WalMaintenanceResult } from '../../src/workflows/walMaintenance.js';
import { PGWARDEN, startArchivingCluster, switchAndArchive, type ArchivingSetup } from '../helpers/archiving.js';
import { testSecrets } from '../helpers/config.js';
import { startSshd, type SshServer } from '../helpers/sshd.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

let setup: ArchivingSetup;
let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let sshd: SshServer;
const queue = uniqueQueue('retention');
let runs = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );
const execute = <T>(type: string, input: object) =>
  env.client.workflow.execute(type, {
    taskQueue: queue,
    workflowId: `${queue}/${type}-${++runs}`,
    args: [input],
  }) as Promise<T>;

async function cli(...args: string[]) {
  const r = await execa(PGWARDEN, ['--config', setup.configFile, 'retention', '--cluster', 'main', ...args], {
    env: { PGWARDEN_FROM_SOURCE: '1', TEMPORAL_ADDRESS: inject('temporalAddress') },
    stdin: 'ignore',
    reject: false,
  });
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  return r.stdout.split('\n');
}
/** The segment number a segment or label file is named by (segments are 16 MiB: 256 per xlogid). */
const segmentOfName = (n: string) => BigInt(`0x${n.slice(8, 16)}`) * 256n + BigInt(`0x${n.slice(16, 24)}`);
const walFiles = async () =>
  (await readdir(join(setup.repository, 'main/wal')))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5))
    .sort();

let l1: string, l2: string, b1: BaseBackupWorkflowResult, b2: BaseBackupWorkflowResult;

beforeAll(async () => {
  [env, sshd] = await Promise.all([testEnvironment(), startSshd()]);
  setup = await startArchivingCluster({
    taskQueue: queue,
    extra: {
      repositories: {
        far: {
          type: 'rsync',
          port: sshd.port,
          identityFile: sshd.identityFile,
          knownHostsFile: sshd.knownHostsFile,
          destination: `${sshd.user}@${sshd.host}:${sshd.remoteRoot}/pgwarden`,
        },
      },
      // Keep only the newest of each kind, and a PITR window of seconds: everything older may go, once offsite.
      retention: {
        daily: 1,
        weekly: 0,
        monthly: 0,
        yearly: 0,
        minimum: 1,
        base: { daily: 0, weekly: 0, monthly: 0, yearly: 0, minimum: 1 },
      },
      walRetention: { window: '0.001 hours' },
      // What waits for the offsite check alerts once committed 1.8 s ago (shipped: 48 hours).
      health: { offsiteWaitingHours: 0.0005 },
    },
  });
  await setup.cluster.query('CREATE DATABASE app');
  await setup.cluster.query(
    'CREATE TABLE items (id serial PRIMARY KEY, note text); INSERT INTO items (note) SELECT md5(g::text) FROM generate_series(1, 1000) g',
    'app',
  );
  worker = await startPgwardenWorker(env, setup.config, testSecrets(setup.cluster));
  l1 = (await execute<FullBackupResult>('fullBackup', { cluster: 'main', database: 'app' })).backups[0]!.backupId;
  b1 = await execute<BaseBackupWorkflowResult>('baseBackup', { cluster: 'main' });
  await setup.cluster.query(`INSERT INTO items (note) VALUES ('between the base backups')`, 'app');
  await switchAndArchive(setup.cluster);
  await sleep(1100); // backup ids are start times to the second
  b2 = await execute<BaseBackupWorkflowResult>('baseBackup', { cluster: 'main' });
  await switchAndArchive(setup.cluster);
}, 240_000);

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await Promise.all([setup?.remove(), sshd?.stop()]);
});

describe('local retention with an offsite repository', () => {
  it('deletes nothing locally before the offsite check has confirmed it, and says what waits', async () => {
    const full = await execute<FullBackupResult>('fullBackup', { cluster: 'main', database: 'app' });
    l2 = full.backups[0]!.backupId;
    const retention = full.retention as LocalRetentionResult;
    expect(retention.delete).toEqual([]);
    expect(retention.waitingOffsite).toEqual([
      { backupId: l1, reason: expect.stringContaining('outside the policy'), repositories: ['far'] },
    ]);
    expect(await exists(join(setup.repository, 'main/logical/app', l1, 'manifest.json'))).toBe(true);

    await sleep(4000); // both base backups now ended before the 3.6 s window: only b2 is needed for it
    const walBefore = await walFiles();
    const applied = await execute<RetentionRunResult>('retention', { cluster: 'main', apply: true });
    expect(applied.base!.delete).toEqual([]);
    expect(applied.base!.waitingOffsite!.map((w) => [w.backupId, w.repositories])).toEqual([[b1.backupId, ['far']]]);
    // No WAL goes before the check: not even WAL older than every base backup here (an offsite
    // repository may keep an older base backup that needs it); the WAL b1 needs waits too.
    expect(applied.wal!.deleted).toEqual([]);
    expect(applied.wal!.waitingOffsite).toBeGreaterThan(0);
    expect(applied.waitingOffsite).toEqual({ backups: 2, walFiles: applied.wal!.waitingOffsite });
    expect(await walFiles()).toEqual(walBefore.filter((n) => !applied.wal!.deleted.includes(n)));
    expect(await exists(join(setup.repository, 'main/base', b1.backupId, 'manifest.json'))).toBe(true);
    // walMaintenance does not keep it quietly either.
    const maintenance = await execute<WalMaintenanceResult>('walMaintenance', { cluster: 'main', dryRun: true });
    expect(maintenance.alerts).toContain(
      `cluster "main": ${applied.wal!.waitingOffsite} WAL files past the PITR window are kept because far has not confirmed them (pgwarden offsite sync --cluster main)`,
    );

    const plan = await cli();
    expect(plan[0]).toBe('retention plan for cluster main (nothing deleted; --apply carries it out)');
    expect(plan).toContain(
      `  waits   ${l1}  outside the policy (1 daily, 0 weekly, 0 monthly, 0 yearly, 1 newest); kept until far confirmed it (offsite check)`,
    );
    expect(plan.find((l) => l.startsWith(`  waits   ${b1.backupId}  `))).toMatch(/kept until far confirmed it/);
    expect(plan.at(-1)).toBe(
      `waiting for the offsite check: 2 backups, ${applied.wal!.waitingOffsite} WAL files (pgwarden offsite sync --cluster main)`,
    );

    // Nor does healthCheck: what waits past the grace period is an alert, keyed by the repository.
    const health = await execute<HealthCheckResult>('healthCheck', { cluster: 'main' });
    const walFilesWaiting = Math.min(20, applied.wal!.waitingOffsite!); // the WAL plan lists the oldest 20
    expect(health.snapshot.offsiteWaiting).toEqual([
      {
        repository: 'far',
        backups: 2,
        walFiles: walFilesWaiting,
        oldest: { what: `main/logical/app/${l1}`, committedAt: expect.any(String) },
      },
    ]);
    expect(health.alerts.filter((a) => a.key.startsWith('offsite-waiting'))).toEqual([
      {
        key: 'offsite-waiting:far',
        message: expect.stringMatching(
          new RegExp(
            `^offsite "far" has not confirmed 2 backups and ${walFilesWaiting} WAL files? of main that local retention would delete \\(the oldest, main/logical/app/${l1}, committed [0-9.]+ hours ago; threshold 0.0005 hours\\)`,
          ),
        ),
      },
    ]);
  }, 120_000);

  it("after offsiteSync's check, the plan names what goes and --apply deletes exactly that", async () => {
    const sync = await execute<OffsiteSyncResult>('offsiteSync', { cluster: 'main' });
    expect(sync.repositories.map((r) => [r.repository, r.error])).toEqual([['far', undefined]]);
    const recordFile = join(setup.repository, 'main/offsite/far.json');
    const record = JSON.parse(await readFile(recordFile, 'utf8')) as { confirmed: Record<string, string> };
    expect(Object.keys(record.confirmed)).toEqual(
      expect.arrayContaining([`main/logical/app/${l1}`, `main/base/${b1.backupId}`, `main/base/${b2.backupId}`]),
    );
    // The offsite copy has b1 but has not confirmed the WAL between b1's and b2's starts (as when its
    // WAL upload fell behind): b1 goes locally, but the offsite b1 still needs that WAL, so it waits
    // for the check, and the plan says so exactly as --apply does it.
    const b1Start = segmentOf(parseLsn(b1.startLsn));
    const b2Start = segmentOf(parseLsn(b2.startLsn));
    const between = (await walFiles()).filter(
      (n) => !n.endsWith('.history') && segmentOfName(n) >= b1Start && segmentOfName(n) < b2Start,
    );
    expect(between.length).toBeGreaterThan(0);
    for (const n of between) delete record.confirmed[`main/wal/${n}`];
    await writeFile(recordFile, JSON.stringify(record) + '\n');

    const walBefore = await walFiles();
    const dryRun = await execute<RetentionRunResult>('retention', { cluster: 'main' });
    expect(dryRun.wal!.waitingOffsite).toBe(between.length);
    expect(dryRun.wal!.deleted.filter((n) => between.includes(n))).toEqual([]);
    const plan = await cli();
    expect(plan).toContain(`logical main/app: keep 1, delete 1`);
    expect(plan).toContain(`  keep    ${l2}  minimum, daily`);
    expect(plan).toContain(`  delete  ${l1}  outside the policy (1 daily, 0 weekly, 0 monthly, 0 yearly, 1 newest)`);
    expect(plan).toContain(`base backups: keep 1, delete 1`);
    expect(plan.find((l) => l.startsWith(`  keep    ${b2.backupId}  `))).toMatch(/pitr-window/);
    const walLine = plan.find((l) => l.startsWith('WAL (PITR window 0.001 hours): '))!;
    expect(walLine).toMatch(new RegExp(`continuous from [0-9A-F]{24} \\(base backup ${b2.backupId}\\); delete \\d+ `));
    expect(plan.filter((l) => l.startsWith('  waits')).map((l) => l.split(/\s+/)[2])).toEqual(between.slice(0, 20));
    // A plan touches nothing.
    expect(await walFiles()).toEqual(walBefore);
    expect(await exists(join(setup.repository, 'main/logical/app', l1))).toBe(true);

    const applied = await cli('--apply');
    expect(applied[0]).toBe('retention applied to cluster main');
    expect(applied).toContain(`  deleted ${l1}  outside the policy (1 daily, 0 weekly, 0 monthly, 0 yearly, 1 newest)`);
    expect(await exists(join(setup.repository, 'main/logical/app', l1))).toBe(false);
    expect(await exists(join(setup.repository, 'main/base', b1.backupId))).toBe(false);
    expect(await exists(join(setup.repository, 'main/logical/app', l2, 'manifest.json'))).toBe(true);
    expect(await exists(join(setup.repository, 'main/base', b2.backupId, 'manifest.json'))).toBe(true);
    // Exactly the WAL before b2's start went, as the plan said, but what waits for the offsite check;
    // b2's WAL and everything after it stayed.
    const after = await walFiles();
    expect(after).toEqual(
      walBefore.filter((n) => n.endsWith('.history') || segmentOfName(n) >= b2Start || between.includes(n)),
    );
    expect(walBefore.filter((n) => !after.includes(n))).toEqual(dryRun.wal!.deleted);
    expect(after.length).toBeLessThan(walBefore.length);

    // The next check confirms it (it is on the remote): then it goes.
    await execute<OffsiteSyncResult>('offsiteSync', { cluster: 'main' });
    const again = await execute<RetentionRunResult>('retention', { cluster: 'main', apply: true });
    expect([again.logical[0]!.retention.delete, again.base!.delete, again.wal!.deleted]).toEqual([[], [], between]);
    const last = await execute<RetentionRunResult>('retention', { cluster: 'main', apply: true });
    expect([last.logical[0]!.retention.delete, last.base!.delete, last.wal!.deleted]).toEqual([[], [], []]);
    const maintenance = await execute<WalMaintenanceResult>('walMaintenance', { cluster: 'main' });
    expect(maintenance.retention).toMatchObject({ deleted: [], waitingOffsite: 0 });
    expect(maintenance.alerts.filter((a) => a.includes('PITR window'))).toEqual([]);
    const health = await execute<HealthCheckResult>('healthCheck', { cluster: 'main' });
    expect(health.snapshot.offsiteWaiting).toEqual([]);
    expect(health.alerts.filter((a) => a.key.startsWith('offsite-waiting'))).toEqual([]);
  }, 180_000);

  it('a backup the offsite tiers do not keep (never sent) is not kept locally forever', async () => {
    // Four backups the same day before the next sync: far's default tiers keep the day's newest and
    // the 3 newest, so the first of them it never takes; the local policy keeps only the newest.
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      await sleep(1100);
      ids.push(
        (await execute<FullBackupResult>('fullBackup', { cluster: 'main', database: 'app' })).backups[0]!.backupId,
      );
    }
    const sync = await execute<OffsiteSyncResult>('offsiteSync', { cluster: 'main' });
    expect(sync.repositories.map((r) => [r.repository, r.error])).toEqual([['far', undefined]]);
    expect(await exists(join(sshd.remoteRoot, 'pgwarden/main/logical/app', ids[0]!))).toBe(false);
    expect(await exists(join(sshd.remoteRoot, 'pgwarden/main/logical/app', ids[1]!, 'manifest.json'))).toBe(true);
    const record = JSON.parse(await readFile(join(setup.repository, 'main/offsite/far.json'), 'utf8')) as {
      confirmed: Record<string, string>;
      notHeld?: Record<string, string>;
    };
    expect(record.notHeld).toEqual({ [`main/logical/app/${ids[0]}`]: expect.any(String) });

    const applied = await execute<RetentionRunResult>('retention', { cluster: 'main', apply: true });
    expect(applied.logical[0]!.retention.waitingOffsite).toEqual([]);
    expect(applied.logical[0]!.retention.delete.map((d) => d.backupId).sort()).toEqual(ids.slice(0, 3));
    for (const id of ids.slice(0, 3)) expect(await exists(join(setup.repository, 'main/logical/app', id))).toBe(false);
    expect(await exists(join(setup.repository, 'main/logical/app', ids[3]!, 'manifest.json'))).toBe(true);
  }, 120_000);
});

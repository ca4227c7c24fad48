// walMaintenance against a real PostgreSQL 15 cluster and the real Temporal dev server: a broken
// archive_command shows as failures with an alert; retention deletes only the WAL older than the
// oldest base backup's start segment (dry run: nothing) and is idempotent; the size alert fires;
// lag alerts only while segments wait; `pgwarden cluster archiving` prints and applies the settings.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { zstdCompressSync } from 'node:zlib';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWalMaintenanceActivities } from '../../src/activities/walMaintenance.js';
import type { WalRecord } from '../../src/storage/walArchive.js';
import { applyArchivingSettings, archivingSettings } from '../../src/cli/commands/cluster.js';
import type { Config } from '../../src/config/index.js';
import type { BaseManifest } from '../../src/lib/manifest.js';
import type { WalMaintenanceResult } from '../../src/workflows/walMaintenance.js';
import { testConfig, testSecrets } from '../helpers/config.js';
import { startCluster, type TestCluster } from '../helpers/postgres.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

let cluster: TestCluster;
let env: TestWorkflowEnvironment;
let dir: string;
let config: Config;
let worker: RunningWorker;
const queue = uniqueQueue('walmaint');
const walDir = () => join(dir, 'repo/main/wal');
const secrets = () => ({ ...process.env, ...testSecrets(cluster) });

// (Stored WAL segments are 100–199 random bytes, so the 8 kept files always exceed the 500 B alert.)
// The fake archive: timeline 1 segments 1..B, a backup label in segment 3, timeline 2 (forked in
// segment 4) from 4 on, its history file, and a standby's .partial. The oldest base backup starts
// in segment 5 (0/5000028), a newer one in segment 9.
const seg = (tli: number, n: number) => `0000000${tli}000000000000000${n.toString(16).toUpperCase()}`;
const OLD = [seg(1, 1), seg(1, 2), seg(1, 3), '000000010000000000000003.00000028.backup', seg(1, 4), seg(2, 4)];
const KEPT = [
  seg(1, 5),
  seg(1, 6),
  seg(1, 9),
  seg(1, 0xb),
  '00000002.history',
  `${seg(1, 4)}.partial`,
  seg(2, 5),
  seg(2, 6),
];
const storedBytes = new Map<string, number>();

async function fakeWal(name: string): Promise<void> {
  // A history file is read (timelines started by a PITR), so it is a real one: timeline 2 forked in segment 4.
  const raw = name.endsWith('.history') ? Buffer.from('1\t0/4000100\tno recovery target specified\n') : undefined;
  const data = raw ? zstdCompressSync(raw) : randomBytes(100 + Math.floor(Math.random() * 100));
  const sha256 = createHash('sha256').update(data).digest('hex');
  const rawSha256 = raw ? createHash('sha256').update(raw).digest('hex') : sha256;
  const record: WalRecord = {
    name,
    stored: `${name}.zst`,
    bytes: data.length,
    sha256,
    rawBytes: raw?.length ?? 16 << 20,
    rawSha256,
    compression: 'zstd',
    encrypted: false,
    archivedAt: new Date().toISOString(),
  };
  await writeFile(join(walDir(), record.stored), data);
  await writeFile(join(walDir(), `${name}.json`), JSON.stringify(record));
  storedBytes.set(name, data.length);
}

async function fakeBaseBackup(backupId: string, startLsn: string, stopLsn: string): Promise<void> {
  const manifest: BaseManifest = {
    format: 1,
    kind: 'base',
    cluster: 'main',
    backupId,
    serverVersion: '15.0',
    serverVersionNum: 150000,
    systemIdentifier: '7000000000000000001',
    startedAt: new Date().toISOString(),
    finishedAt: new Date().toISOString(),
    bytes: 0,
    sha256: '0'.repeat(64),
    artifacts: [],
    compression: { algorithm: 'zstd' },
    encryption: null,
    timeline: 1,
    startLsn,
    stopLsn,
    verifications: [],
    pgwardenVersion: '0.1.0',
  };
  const backupDir = join(dir, 'repo/main/base', backupId);
  await mkdir(backupDir, { recursive: true });
  await writeFile(join(backupDir, 'manifest.json'), JSON.stringify(manifest));
}

const run = (dryRun: boolean) =>
  env.client.workflow.execute('walMaintenance', {
    taskQueue: queue,
    workflowId: `${queue}/${Math.random()}`,
    args: [{ cluster: 'main', dryRun }],
  }) as Promise<WalMaintenanceResult>;
const archiver = async () =>
  (
    await cluster.query<{ failed: string; last: string | null }>(
      'SELECT failed_count::text AS failed, last_archived_wal AS last FROM pg_stat_archiver',
    )
  )[0]!;
async function until(what: string, ready: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
/** Writes some WAL and ends its segment, so the archiver has a segment to work on. */
async function switchWal(): Promise<string> {
  await cluster.query('INSERT INTO t SELECT generate_series(1, 100)');
  return (await cluster.query<{ wal: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS wal'))[0]!.wal;
}
async function setArchiveCommand(command: string): Promise<void> {
  await cluster.query(`ALTER SYSTEM SET archive_command = '${command}'`);
  await cluster.query('SELECT pg_reload_conf()');
}

beforeAll(async () => {
  [cluster, env] = await Promise.all([
    startCluster({ settings: { wal_level: 'replica', archive_mode: 'on', archive_command: "'false'" } }),
    testEnvironment(),
  ]);
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-walmaint-'));
  config = testConfig({
    cluster,
    repository: join(dir, 'repo'),
    taskQueue: queue,
    extra: { walMaintenance: { archiveSizeAlertBytes: 500 } },
  });
  await mkdir(walDir(), { recursive: true });
  for (const name of [...OLD, ...KEPT].filter((n) => !n.endsWith('.history'))) await fakeWal(name);
  await fakeBaseBackup('20261123T020000Z', '0/9000028', '0/9000100');
  await fakeBaseBackup('20261122T020000Z', '0/5000028', '0/5000100');
  // Archived after the backups finished, as after a PITR: retention reads it (it forked before both backups: nothing more is kept).
  await new Promise((r) => setTimeout(r, 5));
  await fakeWal('00000002.history');
  await cluster.query('CREATE TABLE t (i int)');
  worker = await startPgwardenWorker(env, config, testSecrets(cluster));
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await Promise.all([cluster?.stop(), dir && rm(dir, { recursive: true, force: true })]);
});

describe('walMaintenance', () => {
  it('reports a failing archive_command with an alert; a dry run deletes nothing', async () => {
    await switchWal();
    await until('a failed archive attempt', async () => Number((await archiver()).failed) > 0);
    const before = (await readdir(walDir())).sort();
    const result = await run(true);
    expect(result.health).toMatchObject({ archiveMode: 'on', lastArchivedWal: null, secondsSinceLastArchived: null });
    expect(result.health.failedCount).toBeGreaterThan(0);
    expect(result.health.lastFailedWal).toMatch(/^[0-9A-F]{24}$/);
    expect(result.alerts).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^cluster "main": archive_command is failing: \\d+ failed attempts, the last for ${result.health.lastFailedWal}`,
        ),
      ),
    );
    expect(result.retention).toMatchObject({
      dryRun: true,
      deleted: [...OLD].sort(),
      kept: KEPT.length,
      keepFrom: { backupId: '20261122T020000Z', segment: seg(1, 5) },
    });
    expect((await readdir(walDir())).sort()).toEqual(before);
  });

  it("deletes only the WAL older than the oldest base backup's start segment, and again nothing", async () => {
    const result = await run(false);
    const freed = OLD.reduce((s, n) => s + storedBytes.get(n)!, 0);
    const left = KEPT.reduce((s, n) => s + storedBytes.get(n)!, 0);
    // Both backups are younger than the PITR window (14 days): the WAL stays continuous from the oldest.
    expect(result.retention).toEqual({
      dryRun: false,
      deleted: [...OLD].sort(),
      kept: KEPT.length,
      bytesFreed: freed,
      keepFrom: { backupId: '20261122T020000Z', segment: seg(1, 5) },
      ranges: [],
      window: '14 days',
      waitingOffsite: 0,
      waitingOffsiteFiles: [],
    });
    expect((await readdir(walDir())).sort()).toEqual(KEPT.flatMap((n) => [`${n}.json`, `${n}.zst`]).sort());
    expect(result.size).toMatchObject({ files: KEPT.length, bytes: left });
    expect(result.size.alert).toMatch(
      /^cluster "main": the WAL archive holds .* in 8 files, over the alert threshold of 500 B/,
    );
    expect(result.alerts).toContain(result.size.alert);

    const again = await run(false);
    expect(again.retention).toMatchObject({ deleted: [], kept: KEPT.length, bytesFreed: 0 });
  });

  it('alerts on archive lag only while segments wait to be archived', async () => {
    const health = createWalMaintenanceActivities({
      config: { ...config, walMaintenance: { archiveLagAlertSeconds: 1 } },
      env: secrets(),
    }).archiverHealth;
    await setArchiveCommand('true');
    const archived = await switchWal();
    await until(`${archived} archived`, async () => ((await archiver()).last ?? '') >= archived);
    await new Promise((r) => setTimeout(r, 2100));
    // Quiet and caught up: old failures and a long pause are no alert.
    const idle = await health({ cluster: 'main' });
    expect(idle).toMatchObject({ lastArchivedWal: archived, segmentsWaiting: 0, alerts: [] });
    expect(idle.secondsSinceLastArchived).toBeGreaterThanOrEqual(2);

    await setArchiveCommand('false');
    const failed = Number((await archiver()).failed);
    await switchWal();
    await until('another failed attempt', async () => Number((await archiver()).failed) > failed);
    const stuck = await health({ cluster: 'main' });
    expect(stuck.segmentsWaiting).toBeGreaterThanOrEqual(1);
    expect(stuck.alerts).toEqual([
      expect.stringMatching(/archive_command is failing/),
      expect.stringMatching(
        new RegExp(
          `^cluster "main": nothing archived for \\d+s \\(alert threshold 1s\\) while \\d+ segments wait; last archived ${archived}$`,
        ),
      ),
    ]);
  });

  it('`pgwarden cluster archiving` prints the settings, and --apply sets them and names what needs a restart', async () => {
    const configFile = join(dir, 'pgwarden.config.json');
    await writeFile(configFile, JSON.stringify(config));
    const bin = resolve(import.meta.dirname, '../../bin/pgwarden');
    // From another directory, as PostgreSQL runs archive_command from its data directory.
    const { stdout } = await execa(bin, ['--config', configFile, 'cluster', 'archiving', '--cluster', 'main'], {
      cwd: tmpdir(),
    });
    const command = `${bin} --config ${configFile} wal-push --cluster main %p %f`;
    expect(stdout.split('\n').slice(1)).toEqual([
      'wal_level = replica',
      'archive_mode = on',
      `archive_command = '${command}'`,
      'archive_timeout = 60',
    ]);

    const settings = archivingSettings('main', configFile);
    expect(await applyArchivingSettings(config, 'main', settings, secrets())).toEqual({ kept: [], pendingRestart: [] });
    const rows = await cluster.query<{ name: string; setting: string }>(
      `SELECT name, setting FROM pg_settings WHERE name IN ('archive_command', 'archive_timeout') ORDER BY name`,
    );
    expect(rows).toEqual([
      { name: 'archive_command', setting: command },
      { name: 'archive_timeout', setting: '60' },
    ]);
    // wal_level is a restart setting: applied, but pending until PostgreSQL restarts.
    expect(await applyArchivingSettings(config, 'main', [{ name: 'wal_level', value: 'logical' }], secrets())).toEqual({
      kept: [],
      pendingRestart: ['wal_level'],
    });
    await setArchiveCommand('false'); // no wal-push runs against this test's directory during teardown
  });
});

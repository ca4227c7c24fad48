// healthCheck and the metrics against a real PostgreSQL 15 cluster (archiving on), a real
// repository, a real S3 server and the real Temporal dev server, with a webhook receiver in the
// test: a healthy cluster sends nothing; a stale backup, a failing archive_command and offsite
// drift raise their alerts in one notification, not repeated by the next run; fixing them sends
// the all-clear; a restore waiting at `approve` notifies with the approve command and counts in
// /metrics, which serves every named series with the values of the backups just made. The backups
// are encrypted and the key's passphrase reaches the worker only as the worker's env (never
// process.env): a timeline history archived by a PITR is read with it.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { execa } from 'execa';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/index.js';
import { parseLogicalManifest } from '../../src/lib/manifest.js';
import { startMetricsServer, type MetricsServer } from '../../src/worker/metrics.js';
import type { HealthCheckResult } from '../../src/workflows/healthCheck.js';
import { PGWARDEN } from '../helpers/archiving.js';
import { PASSPHRASE_ENV, testConfig, testSecrets } from '../helpers/config.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { startCluster, type TestCluster } from '../helpers/postgres.js';
import { startS3Server, type S3Server } from '../helpers/s3.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

const queue = uniqueQueue('health');
const S3_KEY_ENV = 'PGWARDEN_TEST_S3_KEY';
const S3_SECRET_ENV = 'PGWARDEN_TEST_S3_SECRET';
let cluster: TestCluster;
let key: TestKey;
let env: TestWorkflowEnvironment;
let s3: S3Server;
let dir: string;
let config: Config;
let worker: RunningWorker;
let webhook: Server;
let metrics: MetricsServer;
const received: Record<string, unknown>[] = [];
let runs = 0;
/** What the webhook receiver answers; a 4xx stands for a misconfigured URL or token. */
let webhookStatus = 204;

const execute = <T>(type: string, input: object) =>
  env.client.workflow.execute(type, {
    taskQueue: queue,
    workflowId: `${queue}/${type}-${++runs}`,
    args: [input],
  }) as Promise<T>;
const healthCheck = () => execute<HealthCheckResult>('healthCheck', { cluster: 'main' });
const manifestFile = async () => {
  const id = (await import('node:fs/promises')).readdir(join(dir, 'repo/main/logical/app'));
  return join(dir, 'repo/main/logical/app', (await id).sort().at(-1)!, 'manifest.json');
};

async function scrape(): Promise<Map<string, number>> {
  const text = await (await fetch(metrics.url)).text();
  const series = new Map<string, number>();
  for (const line of text.split('\n'))
    if (line && !line.startsWith('#'))
      series.set(line.slice(0, line.lastIndexOf(' ')), Number(line.slice(line.lastIndexOf(' ') + 1)));
  return series;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-health-'));
  webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (webhookStatus < 300) received.push({ ...JSON.parse(body), authorization: req.headers.authorization });
      res.writeHead(webhookStatus).end();
    });
  });
  await new Promise<void>((r) => webhook.listen(0, '127.0.0.1', r));
  [cluster, env, s3, key] = await Promise.all([
    startCluster({ settings: { wal_level: 'replica', archive_mode: 'on', archive_command: "'true'" } }),
    testEnvironment(),
    startS3Server(),
    createTestKey(),
  ]);
  await s3.bucket('offsite');
  config = testConfig({
    cluster,
    repository: join(dir, 'repo'),
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
      notifications: {
        webhook: {
          url: `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook`,
          tokenEnv: 'PGWARDEN_TEST_HOOK_TOKEN',
        },
      },
      health: { offsiteGraceHours: 0 },
    },
  });
  const secrets = {
    ...testSecrets(cluster, key),
    [S3_KEY_ENV]: s3.accessKey,
    [S3_SECRET_ENV]: s3.secretKey,
    PGWARDEN_TEST_HOOK_TOKEN: 'hook-token',
  };
  worker = await startPgwardenWorker(env, config, secrets);
  metrics = await startMetricsServer({
    config,
    env: { ...process.env, ...secrets },
    client: env.client,
    port: 0,
    cacheMs: 0,
  });
  await cluster.query('CREATE DATABASE app');
  await cluster.query(
    `CREATE TABLE items (id serial PRIMARY KEY, note text); INSERT INTO items (note) SELECT md5(g::text) FROM generate_series(1, 2000) g`,
    'app',
  );
  await execute('fullBackup', { cluster: 'main', database: 'app' });
  await execute('verifyBackup', { cluster: 'main', database: 'app' });
  await execute('offsiteSync', { cluster: 'main', check: 'quick' });
}, 180_000);

afterAll(async () => {
  await metrics?.close();
  await worker?.stop();
  await Promise.all([
    cluster?.stop(),
    env?.teardown(),
    s3?.destroy(),
    key?.remove(),
    new Promise((r) => webhook?.close(r)),
  ]);
  await rm(dir, { recursive: true, force: true });
});

describe('healthCheck', () => {
  it('a healthy cluster: no alert, nothing sent; /metrics serves every series with the backup just made', async () => {
    const result = await healthCheck();
    expect(result.alerts).toEqual([]);
    expect(result).toMatchObject({ healthy: true, notification: {} });
    expect(received).toEqual([]);

    const manifest = parseLogicalManifest(await readFile(await manifestFile(), 'utf8'));
    const m = await scrape();
    expect(m.get('pgwarden_backup_last_success_timestamp_seconds{cluster="main",kind="logical",database="app"}')).toBe(
      Date.parse(manifest.finishedAt) / 1000,
    );
    expect(m.get('pgwarden_backup_last_size_bytes{cluster="main",kind="logical",database="app"}')).toBe(manifest.bytes);
    const verifiedAge = m.get('pgwarden_verified_restore_age_seconds{cluster="main",database="app"}')!;
    expect(verifiedAge).toBeGreaterThanOrEqual(0);
    expect(verifiedAge).toBeLessThan(120);
    expect(m.get('pgwarden_cluster_up{cluster="main"}')).toBe(1);
    expect(m.get('pgwarden_wal_archive_failed_count{cluster="main"}')).toBe(0);
    expect(m.get('pgwarden_wal_archive_lag_seconds{cluster="main"}')).toBeGreaterThanOrEqual(0);
    expect(m.get('pgwarden_repository_free_bytes{repository="local"}')).toBeGreaterThan(0);
    expect(m.get('pgwarden_repository_size_bytes{repository="local"}')).toBeGreaterThan(
      m.get('pgwarden_repository_free_bytes{repository="local"}')!,
    );
    expect(m.get('pgwarden_offsite_missing_objects{cluster="main",repository="s3"}')).toBe(0);

    // Temporal unreachable: only the approvals series is left out; the backups' still serve.
    const cut = await startMetricsServer({
      config,
      env: { ...process.env, ...testSecrets(cluster) },
      client: new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) }),
      port: 0,
      cacheMs: 0,
    });
    try {
      const response = await fetch(cut.url);
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(text).toContain(
        `pgwarden_backup_last_size_bytes{cluster="main",kind="logical",database="app"} ${manifest.bytes}`,
      );
      expect(text).not.toMatch(/^pgwarden_approvals_waiting\{/m);
    } finally {
      await cut.close();
    }
  });

  it('a stale backup, a failing archive_command and offsite drift: one notification naming each, not repeated; fixed: the all-clear', async () => {
    // Stale: the newest backup finished two days ago.
    const file = await manifestFile();
    const original = await readFile(file, 'utf8');
    const twoDaysAgo = new Date(Date.now() - 48 * 3_600_000).toISOString();
    await writeFile(file, JSON.stringify({ ...JSON.parse(original), startedAt: twoDaysAgo, finishedAt: twoDaysAgo }));
    // Failing archiver.
    await cluster.query(`ALTER SYSTEM SET archive_command = 'false'`);
    await cluster.query('SELECT pg_reload_conf()');
    await cluster.query(
      'CREATE TABLE churn AS SELECT g FROM generate_series(1, 1000) g; SELECT pg_switch_wal()',
      'app',
    );
    for (let i = 0; i < 100; i++) {
      const [row] = await cluster.query<{ failed: string }>(
        'SELECT failed_count::text AS failed FROM pg_stat_archiver',
      );
      if (Number(row!.failed) > 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    // Drift: a dump deleted on the remote behind pgwarden's back.
    const dumpKey = (await import('node:fs/promises'))
      .readdir(join(file, '..'))
      .then((names) => names.find((n) => n.startsWith('dump.'))!);
    await rm(s3.objectPath('offsite', `main/logical/app/${JSON.parse(original).backupId}/${await dumpKey}`));

    // The webhook refuses (a wrong token): the check still completes with its alerts, says why
    // nothing was delivered, and the next check tries again.
    webhookStatus = 403;
    const refused = await healthCheck();
    webhookStatus = 204;
    expect(refused.alerts).toHaveLength(3);
    expect(refused.notification).toEqual({ error: expect.stringMatching(/^webhook 127\.0\.0\.1:\d+ answered 403$/) });
    expect(received).toEqual([]);

    const result = await healthCheck();
    expect(result.alerts.map((a) => a.key).sort()).toEqual([
      'archiver:failing',
      'backup-stale:app',
      'offsite-drift:s3',
    ]);
    expect(result.notification).toMatchObject({ sent: 'alert', delivery: { sent: ['webhook'], skipped: [] } });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      source: 'pgwarden',
      event: 'alert',
      cluster: 'main',
      title: 'main: 3 health alerts',
      authorization: 'Bearer hook-token',
    });
    const text = received[0]!.text as string;
    expect(text).toContain('main/app: the newest backup finished 2 days ago (threshold 24 hours)');
    expect(text).toContain('archive_command is failing');
    expect(text).toContain('offsite "s3" lacks 1 object of main (1 with recent ones)');
    const m = await scrape();
    expect(m.get('pgwarden_wal_archive_failed_count{cluster="main"}')).toBeGreaterThan(0);
    expect(m.get('pgwarden_offsite_missing_objects{cluster="main",repository="s3"}')).toBe(1);

    // Same alerts 15 minutes later: nothing new to say.
    expect((await healthCheck()).notification).toEqual({});
    expect(received).toHaveLength(1);

    await writeFile(file, original);
    await cluster.query(`ALTER SYSTEM SET archive_command = 'true'`);
    await cluster.query('SELECT pg_reload_conf()');
    await cluster.query('SELECT pg_switch_wal()');
    for (let i = 0; i < 100; i++) {
      const [row] = await cluster.query<{ ok: boolean }>(
        'SELECT last_archived_time > last_failed_time AS ok FROM pg_stat_archiver',
      );
      if (row!.ok) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await execute('offsiteSync', { cluster: 'main', check: 'quick' });
    const fixed = await healthCheck();
    expect(fixed.alerts).toEqual([]);
    expect(fixed.notification.sent).toBe('resolved');
    expect(received.at(-1)).toMatchObject({ event: 'resolved', title: 'main: all health checks pass again' });
  });

  it('a restore waiting at approve notifies with the approve command and counts as waiting in /metrics', async () => {
    const handle = await env.client.workflow.start('restoreDatabase', {
      taskQueue: queue,
      workflowId: `pgwarden/main/app/restore/${queue}`,
      args: [{ cluster: 'main', database: 'app' }],
    });
    for (let i = 0; i < 300 && !received.some((r) => r.event === 'approval'); i++)
      await new Promise((r) => setTimeout(r, 200));
    const notice = received.find((r) => r.event === 'approval')!;
    expect(notice).toMatchObject({
      cluster: 'main',
      workflowId: handle.workflowId,
      title: `main: approval needed for ${handle.workflowId}`,
    });
    expect(notice.text).toContain(`pgwarden approve ${handle.workflowId} --approver NAME --reason TEXT`);
    expect(notice.text).toContain('the live database is kept as app_pre_restore_');
    expect((await scrape()).get('pgwarden_approvals_waiting{cluster="main",kind="restore"}')).toBe(1);
    await handle.signal('reject', { approver: 'test', reason: 'only checking the notification' });
    expect(await handle.result()).toMatchObject({ outcome: 'rejected' });
  });

  it("after a PITR archived a timeline history, the check reads it with the worker's key and completes", async () => {
    // What an in-place PITR leaves in the archive: 00000002.history, encrypted, pushed as archive_command does.
    expect(process.env[PASSPHRASE_ENV]).toBeUndefined();
    const configFile = join(dir, 'pgwarden.config.json');
    await writeFile(configFile, JSON.stringify(config));
    const history = join(dir, '00000002.history');
    await writeFile(history, '1\t0/3000060\tbefore 2026-11-22 14:31:00+00\n');
    const push = await execa(
      PGWARDEN,
      ['--config', configFile, 'wal-push', '--cluster', 'main', history, '00000002.history'],
      { reject: false, env: { PGWARDEN_FROM_SOURCE: '1' } },
    );
    expect(push.exitCode, push.stderr).toBe(0);
    const result = await healthCheck(); // failed KeyUnreadable ("PGWARDEN_TEST_PASSPHRASE ... is not set") before
    expect(JSON.stringify(result)).not.toContain('KeyUnreadable');
    expect(result.alerts.map((a) => a.message).join('\n')).not.toContain(PASSPHRASE_ENV);
  });
});

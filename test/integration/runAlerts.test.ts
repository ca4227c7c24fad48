// Every failure is heard, once: healthCheck asks the real Temporal dev server for the runs that
// closed since its last look, against a real PostgreSQL 15 cluster and repository, with a webhook
// receiver and a sendmail stand-in in the test. A fullBackup of a missing database → one message
// per channel naming the run and the error, nothing more from the next check, the all-clear when
// the next run succeeds; a failed verification and a terminated restore → alerts, a rejected
// restore → none; archived WAL without a base backup and an archive over its size threshold; a
// paused schedule; a failing healthCheck; then /metrics has the counts, and every metric the
// shipped Prometheus rules and Grafana dashboard use exists (promtool checks and unit-tests the rules).
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WalRecord } from '../../src/storage/walArchive.js';
import { ensureSearchAttributes, startRun } from '../../src/cli/client.js';
import { applySchedules } from '../../src/cli/scheduleOps.js';
import type { Config } from '../../src/config/index.js';
import type { RunLabels } from '../../src/lib/visibility.js';
import { startMetricsServer } from '../../src/worker/metrics.js';
import type { RunWatchState } from '../../src/lib/runAlerts.js';
import type { HealthCheckResult } from '../../src/workflows/healthCheck.js';
import { testConfig, testSecrets } from '../helpers/config.js';
import { startCluster, type TestCluster } from '../helpers/postgres.js';
import { requireBinary } from '../helpers/require.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

const queue = uniqueQueue('runalerts');
// Schedules are namespace-wide on the shared server: a cluster name of this file's own.
const scheduled = `alerts${randomBytes(3).toString('hex')}`;
const scheduleId = `pgwarden/${scheduled}/base-weekly`;
let cluster: TestCluster;
let env: TestWorkflowEnvironment;
let dir: string;
let config: Config;
let worker: RunningWorker;
let webhook: Server;
const received: { event: string; cluster: string; title: string; text: string }[] = [];
let runs = 0;

const mailFile = () => join(dir, 'mail.txt');
/** The mails sendmail was given, one per message. */
const mails = async () => (await readFile(mailFile(), 'utf8').catch(() => '')).split('\n--end--\n').filter(Boolean);
const alertsOf = (c: string) => received.filter((r) => r.cluster === c && r.event !== 'approval');

async function start(labels: RunLabels, input: object) {
  const workflowId = `pgwarden/${labels.cluster}/${labels.database ? `${labels.database}/` : ''}${labels.kind}/${queue}-${++runs}`;
  return startRun(env.client, config, labels, { workflowId, args: [input] });
}
/** Waits until Temporal's visibility lists the run as closed (it lags the close by a moment; a real check would see it next time). */
async function listedClosed(workflowId: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    for await (const _ of env.client.workflow.list({
      query: `WorkflowId = '${workflowId}' AND ExecutionStatus != 'Running'`,
    }))
      return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${workflowId} not listed as closed`);
}
let lastCheck = '';
const healthCheck = (c = 'main') =>
  env.client.workflow.execute('healthCheck', {
    taskQueue: queue,
    workflowId: (lastCheck = `pgwarden/${c}/health/${queue}-${++runs}`),
    args: [{ cluster: c }],
  }) as Promise<HealthCheckResult>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-runalerts-'));
  // Keeps each message it is given, as sendmail -t would deliver it.
  await writeFile(join(dir, 'sendmail'), `#!/bin/sh\n{ cat; printf '\\n--end--\\n'; } >> '${mailFile()}'\n`);
  await chmod(join(dir, 'sendmail'), 0o755);
  webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => webhook.listen(0, '127.0.0.1', r));
  [cluster, env] = await Promise.all([
    startCluster({ settings: { wal_level: 'replica', archive_mode: 'on', archive_command: "'true'" } }),
    testEnvironment(),
  ]);
  const base = testConfig({ cluster, repository: join(dir, 'repo'), taskQueue: queue });
  const off = Object.fromEntries(
    ['full-daily', 'wal-maintenance', 'verify-daily', 'health', 'pitr-rehearsal-weekly'].map((j) => [
      j,
      false as const,
    ]),
  );
  config = testConfig({
    cluster,
    repository: join(dir, 'repo'),
    taskQueue: queue,
    extra: {
      clusters: { main: base.clusters.main!, [scheduled]: { ...base.clusters.main!, schedules: off } },
      notifications: {
        webhook: { url: `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook` },
        email: { to: ['dba@example.com'], from: 'pgwarden', sendmail: join(dir, 'sendmail') },
      },
      walMaintenance: { archiveSizeAlertBytes: 1000 },
    },
  });
  await ensureSearchAttributes(env.client);
  worker = await startPgwardenWorker(env, config, testSecrets(cluster));
  await cluster.query('CREATE DATABASE app');
  await cluster.query(
    `CREATE TABLE items (id serial PRIMARY KEY, note text); INSERT INTO items (note) SELECT md5(g::text) FROM generate_series(1, 500) g`,
    'app',
  );
  await (
    await start({ cluster: 'main', database: 'app', kind: 'full' }, { cluster: 'main', database: 'app' })
  ).result();
  await (
    await start({ cluster: 'main', database: 'app', kind: 'verify' }, { cluster: 'main', database: 'app' })
  ).result();
}, 180_000);

afterAll(async () => {
  await env?.client.schedule
    .getHandle(scheduleId)
    .delete()
    .catch(() => undefined);
  await worker?.stop();
  await Promise.all([cluster?.stop(), env?.teardown(), new Promise((r) => webhook?.close(r))]);
  await rm(dir, { recursive: true, force: true });
});

describe('failed runs are heard once, and their all-clear', () => {
  it('succeeding runs: nothing to say', async () => {
    const result = await healthCheck();
    expect(result.alerts).toEqual([]);
    expect(result.notification).toEqual({});
    expect(received).toEqual([]);
  });

  it('a fullBackup of a missing database: one message per channel naming the run and the error; the next check says nothing; the next success clears it', async () => {
    const failed = await start(
      { cluster: 'main', database: 'nosuch', kind: 'full' },
      { cluster: 'main', database: 'nosuch' },
    );
    await expect(failed.result()).rejects.toThrow();
    await listedClosed(failed.workflowId);
    const mailsBefore = (await mails()).length;

    const first = await healthCheck();
    expect(first.alerts.map((a) => a.key)).toEqual(['run-failed:full:nosuch']);
    expect(first.notification).toMatchObject({ sent: 'alert', delivery: { sent: ['webhook', 'email'] } });
    expect(alertsOf('main')).toHaveLength(1);
    const message = alertsOf('main')[0]!;
    expect(message).toMatchObject({ event: 'alert', title: 'main: 1 health alert' });
    expect(message.text).toMatch(
      new RegExp(
        `^full of main/nosuch failed: ${failed.workflowId} at \\S+: cluster "main" has no database "nosuch" that can be backed up$`,
        'm',
      ),
    );
    const mail = (await mails()).slice(mailsBefore);
    expect(mail).toHaveLength(1);
    expect(mail[0]).toContain('Subject: [pgwarden] main: 1 health alert');
    expect(mail[0]).toContain(failed.workflowId);

    // Fifteen minutes later (and a retried check): nothing new.
    expect((await healthCheck()).notification).toEqual({});
    expect(alertsOf('main')).toHaveLength(1);
    expect(await mails()).toHaveLength(mailsBefore + 1);

    await cluster.query('CREATE DATABASE nosuch');
    const fixed = await start(
      { cluster: 'main', database: 'nosuch', kind: 'full' },
      { cluster: 'main', database: 'nosuch' },
    );
    await fixed.result();
    await listedClosed(fixed.workflowId);
    const cleared = await healthCheck();
    expect(cleared.alerts).toEqual([]);
    expect(cleared.notification.sent).toBe('resolved');
    expect(alertsOf('main')).toHaveLength(2);
    expect(alertsOf('main')[1]).toMatchObject({ event: 'resolved', title: 'main: all health checks pass again' });
    expect(alertsOf('main')[1]!.text).toContain(`full of main/nosuch succeeded again: ${fixed.workflowId}`);
    expect(await mails()).toHaveLength(mailsBefore + 2);
    expect((await healthCheck()).notification).toEqual({});
  });

  it("a run started without pgwarden's labels and ids (temporal workflow start) is told by its input", async () => {
    const adhoc = await env.client.workflow.start('fullBackup', {
      taskQueue: queue,
      workflowId: `${queue}-adhoc`,
      args: [{ cluster: 'main', database: 'gone' }],
    });
    await expect(adhoc.result()).rejects.toThrow();
    await listedClosed(adhoc.workflowId);
    const before = alertsOf('main').length;
    expect((await healthCheck()).alerts.map((a) => a.key)).toEqual(['run-failed:full:gone']);
    expect(alertsOf('main')).toHaveLength(before + 1);
    expect(alertsOf('main').at(-1)!.text).toContain(`full of main/gone failed: ${adhoc.workflowId} at `);
    await cluster.query('CREATE DATABASE gone');
    const again = await env.client.workflow.start('fullBackup', {
      taskQueue: queue,
      workflowId: `${queue}-adhoc-2`,
      args: [{ cluster: 'main', database: 'gone' }],
    });
    await again.result();
    await listedClosed(again.workflowId);
    expect((await healthCheck()).alerts).toEqual([]);
    expect(alertsOf('main').at(-1)).toMatchObject({ event: 'resolved', title: 'main: all health checks pass again' });
  });

  it('a failed verification and a terminated restore alert once; a rejected restore is no failure; the next verification clears its alert only', async () => {
    const verify = await start(
      { cluster: 'main', database: 'app', kind: 'verify' },
      { cluster: 'main', database: 'app', backupId: '20200101T000000Z' },
    );
    await expect(verify.result()).rejects.toThrow();
    const rejected = await start(
      { cluster: 'main', database: 'app', kind: 'restore' },
      { cluster: 'main', database: 'app' },
    );
    const killed = await start(
      { cluster: 'main', database: 'app', kind: 'restore' },
      { cluster: 'main', database: 'app' },
    );
    // Both wait at approve (each has sent its approval request).
    for (let i = 0; i < 300 && received.filter((r) => r.event === 'approval').length < 2; i++)
      await new Promise((r) => setTimeout(r, 200));
    await rejected.signal('reject', { approver: 'test', reason: 'not this one' });
    expect(await rejected.result()).toMatchObject({ outcome: 'rejected' });
    await killed.terminate('operator killed it');
    for (const id of [verify.workflowId, rejected.workflowId, killed.workflowId]) await listedClosed(id);
    const before = alertsOf('main').length;

    const result = await healthCheck();
    expect(result.alerts.map((a) => a.key)).toEqual(['run-failed:restore:app', 'run-failed:verify:app']);
    expect(alertsOf('main')).toHaveLength(before + 1);
    const text = alertsOf('main').at(-1)!.text;
    expect(text).toContain(`verify of main/app failed: ${verify.workflowId}`);
    expect(text).toContain('no committed backup 20200101T000000Z of main/app');
    expect(text).toContain(`restore of main/app was terminated: ${killed.workflowId}`);
    expect(text).toContain('operator killed it');
    expect(text).not.toContain(rejected.workflowId);
    expect((await healthCheck()).notification).toEqual({});

    const verified = await start(
      { cluster: 'main', database: 'app', kind: 'verify' },
      { cluster: 'main', database: 'app' },
    );
    await verified.result();
    await listedClosed(verified.workflowId);
    const partly = await healthCheck();
    expect(partly.alerts.map((a) => a.key)).toEqual(['run-failed:restore:app']);
    expect(alertsOf('main')).toHaveLength(before + 2);
    expect(alertsOf('main').at(-1)).toMatchObject({ event: 'resolved', title: 'main: 1 resolved, 1 still firing' });
    expect(alertsOf('main').at(-1)!.text).toMatch(/^verify of main\/app succeeded again: /m);
    expect(alertsOf('main').at(-1)!.text).toContain('Still firing: restore of main/app was terminated');
  });

  it('archived WAL without a base backup, and an archive over its size threshold: alerted once; a base backup clears its alert', async () => {
    const walDir = join(dir, 'repo/main/wal');
    await mkdir(walDir, { recursive: true });
    for (const n of [1, 2]) {
      const name = `0000000100000000000000${n.toString(16).toUpperCase().padStart(2, '0')}`;
      const data = randomBytes(800);
      const sha256 = createHash('sha256').update(data).digest('hex');
      const record: WalRecord = {
        name,
        stored: `${name}.zst`,
        bytes: data.length,
        sha256,
        rawBytes: 16 << 20,
        rawSha256: sha256,
        compression: 'zstd',
        encrypted: false,
        archivedAt: new Date().toISOString(),
      };
      await writeFile(join(walDir, record.stored), data);
      await writeFile(join(walDir, `${name}.json`), JSON.stringify(record));
    }
    const before = alertsOf('main').length;
    const result = await healthCheck();
    expect(result.alerts.map((a) => a.key)).toEqual(['base-missing', 'wal-archive-size', 'run-failed:restore:app']);
    expect(alertsOf('main')).toHaveLength(before + 1);
    expect(alertsOf('main').at(-1)!.text).toContain(
      'cluster "main": WAL is archived (2 files) but there is no base backup',
    );
    expect(alertsOf('main').at(-1)!.text).toContain(
      'the WAL archive holds 1.6 KiB in 2 files, over the alert threshold of 1000 B (walMaintenance.archiveSizeAlertBytes)',
    );
    expect((await healthCheck()).notification).toEqual({});

    // A committed base backup (its manifest is the commit marker).
    const backupId = '20261122T030000Z';
    await mkdir(join(dir, 'repo/main/base', backupId), { recursive: true });
    const now = new Date().toISOString();
    await writeFile(
      join(dir, 'repo/main/base', backupId, 'manifest.json'),
      JSON.stringify({
        format: 1,
        kind: 'base',
        cluster: 'main',
        backupId,
        serverVersion: '15.0',
        serverVersionNum: 150000,
        systemIdentifier: '7000000000000000001',
        startedAt: now,
        finishedAt: now,
        bytes: 0,
        sha256: '0'.repeat(64),
        artifacts: [],
        compression: { algorithm: 'zstd' },
        encryption: null,
        timeline: 1,
        startLsn: '0/1000028',
        stopLsn: '0/1000100',
        verifications: [],
        pgwardenVersion: '0.1.0',
      }),
    );
    const fixed = await healthCheck();
    expect(fixed.alerts.map((a) => a.key)).toEqual(['wal-archive-size', 'run-failed:restore:app']);
    expect(alertsOf('main').at(-1)).toMatchObject({ event: 'resolved', title: 'main: 1 resolved, 2 still firing' });
    expect(alertsOf('main').at(-1)!.text).toContain(
      'Resolved: cluster "main": WAL is archived (2 files) but there is no base backup',
    );
  });

  it('a paused schedule alerts once; unpaused, its alert clears', async () => {
    expect(
      (await applySchedules(env.client, { ...config, clusters: { [scheduled]: config.clusters[scheduled]! } })).created,
    ).toEqual([scheduleId]);
    const handle = env.client.schedule.getHandle(scheduleId);
    await handle.pause('INC-42: disk replacement');
    const paused = await healthCheck(scheduled);
    expect(paused.alerts.map((a) => a.key)).toContain(`schedule-paused:${scheduleId}`);
    const sent = alertsOf(scheduled).filter((r) => r.text.includes('is paused'));
    expect(sent).toHaveLength(1);
    expect(sent[0]!.text).toContain(
      `schedule ${scheduleId} is paused (INC-42: disk replacement): its runs do not start (pgwarden schedules unpause ${scheduleId})`,
    );
    expect((await healthCheck(scheduled)).notification).toEqual({});

    await handle.unpause();
    const unpaused = await healthCheck(scheduled);
    expect(unpaused.alerts.map((a) => a.key)).not.toContain(`schedule-paused:${scheduleId}`);
    expect(alertsOf(scheduled).at(-1)).toMatchObject({ event: 'resolved' });
    expect(alertsOf(scheduled).at(-1)!.text).toContain(`Resolved: schedule ${scheduleId} is paused`);
    expect(alertsOf(scheduled).filter((r) => r.text.includes('is paused'))).toHaveLength(2);
  });

  it('a failing healthCheck is heard from the next one, and cleared by the one after', async () => {
    const failing = await env.client.workflow.start('healthCheck', {
      taskQueue: queue,
      workflowId: `pgwarden/main/health/${queue}-${++runs}`,
      args: [{ cluster: 'main' }],
    });
    await failing.terminate('stuck on a hung NFS mount');
    await expect(failing.result()).rejects.toThrow();
    await listedClosed(failing.workflowId);
    const before = alertsOf('main').length;

    const next = await healthCheck();
    expect(next.alerts.map((a) => a.key)).toContain('run-failed:health');
    expect(alertsOf('main')).toHaveLength(before + 1);
    expect(alertsOf('main').at(-1)!.text).toMatch(
      new RegExp(`^health of main was terminated: ${failing.workflowId} at \\S+: stuck on a hung NFS mount$`, 'm'),
    );
    await listedClosed(lastCheck);
    const after = await healthCheck();
    expect(after.alerts.map((a) => a.key)).not.toContain('run-failed:health');
    expect(alertsOf('main')).toHaveLength(before + 2);
    expect(alertsOf('main').at(-1)!.text).toMatch(/^health of main succeeded again: /m);
  }, 60_000);

  it('/metrics counts failures and durations per procedure, archive size and repository use; the shipped rules and dashboard use only metrics it serves', async () => {
    const metrics = await startMetricsServer({
      config,
      env: { ...process.env, ...testSecrets(cluster) },
      client: env.client,
      port: 0,
      cacheMs: 0,
    });
    let text: string;
    try {
      text = await (await fetch(metrics.url)).text();
    } finally {
      await metrics.close();
    }
    const value = (series: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(`${series} `))
          ?.split(' ')[1],
      );
    expect(value('pgwarden_run_failures_total{cluster="main",procedure="full",database="nosuch"}')).toBe(1);
    expect(value('pgwarden_run_last_failed{cluster="main",procedure="full",database="nosuch"}')).toBe(0);
    expect(value('pgwarden_run_last_failed{cluster="main",procedure="restore",database="app"}')).toBe(1);
    expect(value('pgwarden_run_failures_total{cluster="main",procedure="verify",database="app"}')).toBe(1);
    expect(value('pgwarden_run_failures_total{cluster="main",procedure="health",database=""}')).toBe(1);
    expect(value('pgwarden_run_last_failed{cluster="main",procedure="health",database=""}')).toBe(0);
    expect(
      value('pgwarden_run_last_duration_seconds{cluster="main",procedure="full",database="nosuch"}'),
    ).toBeGreaterThan(0);
    expect(value('pgwarden_health_check_last_timestamp_seconds{cluster="main"}')).toBeGreaterThan(
      Date.now() / 1000 - 300,
    );
    expect(value('pgwarden_wal_archive_bytes{cluster="main"}')).toBe(1600);
    expect(value('pgwarden_wal_archive_files{cluster="main"}')).toBe(2);
    expect(value('pgwarden_wal_archive_alert_bytes{cluster="main"}')).toBe(1000);
    expect(value('pgwarden_repository_stored_bytes{cluster="main",kind="wal"}')).toBe(1600);
    expect(value('pgwarden_repository_stored_bytes{cluster="main",kind="logical"}')).toBeGreaterThan(0);

    const served = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    const rules = await readFile(resolve('deploy/prometheus/pgwarden.rules.yml'), 'utf8');
    const dashboard = await readFile(resolve('deploy/grafana/pgwarden.json'), 'utf8');
    const exprs = [...rules.matchAll(/^\s+expr: (.+)$/gm)].map((m) => m[1]!);
    const panels = (JSON.parse(dashboard) as { panels: { targets: { expr: string }[] }[] }).panels;
    expect(exprs.length).toBeGreaterThan(10);
    expect(panels.length).toBeGreaterThan(10);
    const used = new Set(
      [...exprs, ...panels.flatMap((p) => p.targets.map((t) => t.expr))].flatMap((e) =>
        [...e.matchAll(/pgwarden_[a-z_]+/g)].map((m) => m[0]),
      ),
    );
    expect([...used].filter((m) => !served.has(m))).toEqual([]);
    const promtool = requireBinary('/usr/bin/promtool', 'promtool (Debian package prometheus)');
    const check = await execa(promtool, ['check', 'rules', resolve('deploy/prometheus/pgwarden.rules.yml')], {
      reject: false,
    });
    expect(check.stdout + check.stderr).toContain('SUCCESS: 15 rules found');
    expect(check.exitCode).toBe(0);
    // The rules fire on such series, and clear (deploy/prometheus/pgwarden.rules.test.yml).
    const unit = await execa(promtool, ['test', 'rules', 'pgwarden.rules.test.yml'], {
      cwd: resolve('deploy/prometheus'),
      reject: false,
    });
    expect(unit.stdout + unit.stderr).toContain('SUCCESS');
    expect(unit.exitCode).toBe(0);
  });

  it('a backup that failed and then succeeded between two checks is still heard once, then its all-clear', async () => {
    await listedClosed(lastCheck);
    const failed = await start(
      { cluster: 'main', database: 'late', kind: 'full' },
      { cluster: 'main', database: 'late' },
    );
    await expect(failed.result()).rejects.toThrow();
    await cluster.query('CREATE DATABASE late');
    const fixed = await start(
      { cluster: 'main', database: 'late', kind: 'full' },
      { cluster: 'main', database: 'late' },
    );
    await fixed.result();
    await listedClosed(fixed.workflowId);
    const before = alertsOf('main').length;

    const first = await healthCheck();
    const late = first.alerts.filter((a) => a.key.includes(':full:late'));
    expect(late).toHaveLength(1);
    expect(late[0]!.key).toMatch(/^run-failed:full:late#/);
    expect(alertsOf('main')).toHaveLength(before + 1);
    expect(alertsOf('main').at(-1)!.text).toContain(`full of main/late failed: ${failed.workflowId} at `);
    expect(alertsOf('main').at(-1)!.text).toContain(`(${fixed.workflowId} succeeded since)`);
    await listedClosed(lastCheck);
    const second = await healthCheck();
    expect(second.alerts.filter((a) => a.key.includes(':full:late'))).toEqual([]);
    expect(alertsOf('main')).toHaveLength(before + 2);
    expect(alertsOf('main').at(-1)).toMatchObject({ event: 'resolved' });
    expect(alertsOf('main').at(-1)!.text).toContain(`full of main/late succeeded again: ${fixed.workflowId}`);
    await listedClosed(lastCheck);
    expect((await healthCheck()).notification).toEqual({});
    expect(alertsOf('main')).toHaveLength(before + 2);
  }, 60_000);

  it("a repository that cannot take healthCheck's state (a full disk): the check still notifies, naming each file, again until it can record", async () => {
    await listedClosed(lastCheck);
    // A directory stands where each state file's new copy is written: every write fails, as on a full disk.
    const files = ['health-offsite.json', 'health-runs.json', 'health-notified.json'].map((f) =>
      join(dir, 'repo/main', f),
    );
    for (const f of files) await mkdir(`${f}.partial`);
    const before = alertsOf('main').length;
    const unwritable = (r: HealthCheckResult) =>
      r.alerts
        .filter((a) => a.key.startsWith('state-unwritable:'))
        .map((a) => a.key)
        .sort();
    try {
      const first = await healthCheck();
      expect(unwritable(first)).toEqual(
        files
          .slice(0, 2)
          .map((f) => `state-unwritable:${f}`)
          .sort(),
      );
      // The alerts that already fired are still there (the failed restore, the archive size).
      expect(first.alerts.map((a) => a.key)).toContain('run-failed:restore:app');
      expect(first.notification).toMatchObject({ sent: 'alert', delivery: { sent: ['webhook', 'email'] } });
      expect(first.notification.unrecorded).toContain('health-notified.json');
      expect(alertsOf('main')).toHaveLength(before + 1);
      expect(alertsOf('main').at(-1)!.text).toContain(`cannot write ${files[1]}: `);
      // Nothing could be recorded: at least once, so the next check sends it again rather than going silent.
      await listedClosed(lastCheck);
      expect((await healthCheck()).notification).toMatchObject({ sent: 'alert' });
      expect(alertsOf('main')).toHaveLength(before + 2);
    } finally {
      for (const f of files) await rm(`${f}.partial`, { recursive: true, force: true });
    }
    await listedClosed(lastCheck);
    const fixed = await healthCheck();
    expect(unwritable(fixed)).toEqual([]);
    // What was sent while nothing could be recorded is unknown to this check: the firing set it
    // recorded last is unchanged, so it has nothing to send (no all-clear for the unwritable files).
    expect(fixed.notification).toEqual({});
    expect(alertsOf('main')).toHaveLength(before + 2);
  }, 60_000);

  it('a corrupt record of runs is an alert until the moved-aside file is removed, and a failure it held is "no longer tracked", not resolved', async () => {
    await listedClosed(lastCheck);
    const failed = await start(
      { cluster: 'main', database: 'nosuch2', kind: 'full' },
      { cluster: 'main', database: 'nosuch2' },
    );
    await expect(failed.result()).rejects.toThrow();
    await listedClosed(failed.workflowId);
    expect((await healthCheck()).alerts.map((a) => a.key)).toContain('run-failed:full:nosuch2');
    const runsFile = join(dir, 'repo/main/health-runs.json');
    // Truncated by a crash, and the failure older than the first look's day (simulated: the file is simply lost).
    await writeFile(runsFile, '{"lookedAt":"2026-');
    await listedClosed(lastCheck);
    const before = alertsOf('main').length;
    const corrupt = await healthCheck();
    const unreadable = corrupt.alerts.find((a) => a.key.startsWith('run-state-unreadable:'));
    expect(unreadable?.message).toMatch(
      /health-runs\.json\.unreadable-\S+: healthCheck's record of runs could not be read: .*JSON/,
    );
    expect(alertsOf('main')).toHaveLength(before + 1);
    // The failure is still within the first look's day: it is found again and still fires.
    expect(corrupt.alerts.map((a) => a.key)).toContain('run-failed:full:nosuch2');
    const aside = unreadable!.message.split(': ')[0]!;
    expect(await readFile(aside, 'utf8')).toBe('{"lookedAt":"2026-');
    // Next check: still an alert, not repeated.
    await listedClosed(lastCheck);
    expect((await healthCheck()).notification).toEqual({});
    // The record loses the failure (as after 35 days without a run of it): its alert says "no longer tracked", never "succeeded again".
    const state = JSON.parse(await readFile(runsFile, 'utf8')) as RunWatchState;
    delete state.procedures['full:nosuch2'];
    // (the look starts past the failure, as the day-old failure would be)
    await writeFile(runsFile, JSON.stringify({ ...state, lookedAt: new Date(Date.now() + 15 * 60_000).toISOString() }));
    await rm(aside);
    await listedClosed(lastCheck);
    const lost = await healthCheck();
    expect(lost.alerts.map((a) => a.key)).not.toContain('run-failed:full:nosuch2');
    expect(lost.alerts.filter((a) => a.key.startsWith('run-state-unreadable'))).toEqual([]);
    const text = alertsOf('main').at(-1)!.text;
    expect(text).toMatch(/^No longer tracked, not resolved \(.*\): full of main\/nosuch2 failed: /m);
    expect(text).not.toMatch(/succeeded again|^Resolved: full/m);
  }, 60_000);

  it("an offsite WAL shipping run is told by its input (walOnly) from the daily sync: its failure is offsite-wal's", async () => {
    await listedClosed(lastCheck);
    const wal = await start(
      { cluster: 'main', kind: 'offsite' },
      { cluster: 'main', walOnly: true, repositories: ['nosuch'] },
    );
    await expect(wal.result()).rejects.toThrow();
    await listedClosed(wal.workflowId);
    const result = await healthCheck();
    expect(result.alerts.filter((a) => a.key.startsWith('run-failed:offsite'))).toEqual([
      {
        key: 'run-failed:offsite-wal',
        message: expect.stringMatching(new RegExp(`^offsite-wal of main failed: ${wal.workflowId} at `)),
      },
    ]);
  }, 60_000);

  it('a "*" backup that fails in one database alerts once, naming that database, not again for the "*" run', async () => {
    await listedClosed(lastCheck);
    // A name the repository refuses as a path component: that database's child run fails, and with it the "*" run.
    await cluster.query('CREATE DATABASE "bad name"');
    try {
      const all = await start({ cluster: 'main', database: '*', kind: 'full' }, { cluster: 'main', database: '*' });
      await expect(all.result()).rejects.toThrow();
      await listedClosed(all.workflowId);
      const result = await healthCheck();
      const full = result.alerts.filter((a) => a.key === 'run-failed:full:*' || a.key === 'run-failed:full:bad name');
      expect(full.map((a) => a.key)).toEqual(['run-failed:full:bad name']);
      expect(full[0]!.message).toMatch(
        /^full of main\/bad name failed: pgwarden\/main\/bad name\/full\/\S+ at \S+: database name "bad name" cannot be used as a repository path component$/,
      );
    } finally {
      await cluster.query('DROP DATABASE "bad name"');
    }
  }, 120_000);
});

// Schedules against the real Temporal dev server: `schedules apply` is idempotent (twice leaves
// exactly the configured schedules), a changed config updates, adds and removes exactly what
// changed, a paused schedule stays paused, and `trigger` starts a run that completes on pgwarden's
// real worker against a real PostgreSQL cluster.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { formatZonedTime } from '../../src/cli/format.js';
import { applySchedules, listSchedules, ownedScheduleIds, triggerSchedule } from '../../src/cli/scheduleOps.js';
import { parseConfig, type Config, type ConfigInput } from '../../src/config/index.js';
import { PASSWORD_ENV } from '../helpers/config.js';
import { startCluster, type TestCluster } from '../helpers/postgres.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

const PGWARDEN = resolve('bin/pgwarden');
// A cluster name of this file's own: schedules are namespace-wide on the shared server.
const name = `sched${randomBytes(3).toString('hex')}`;
const queue = uniqueQueue('schedules');
let cluster: TestCluster;
let env: TestWorkflowEnvironment;
let client: Client;
let dir: string;
let worker: RunningWorker | undefined;

function configWith(clusterExtra: Partial<ConfigInput['clusters'][string]>, extra: Partial<ConfigInput> = {}): Config {
  return parseConfig({
    temporal: { address: inject('temporalAddress'), taskQueue: queue },
    clusters: {
      [name]: {
        host: cluster.host,
        port: cluster.port,
        user: cluster.user,
        passwordEnv: PASSWORD_ENV,
        ...clusterExtra,
      },
    },
    repositories: { local: { type: 'local', path: join(dir, 'repo') } },
    worker: { host: queue },
    ...extra,
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-schedules-'));
  [cluster, env] = await Promise.all([startCluster(), testEnvironment()]);
  client = env.client;
});

afterAll(async () => {
  await worker?.stop();
  if (client)
    for (const id of await ownedScheduleIds(client, configWith({})))
      await client.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined);
  await Promise.all([cluster?.stop(), env?.teardown()]);
  await rm(dir, { recursive: true, force: true });
});

describe('schedules', () => {
  it('apply twice leaves exactly the configured schedules, each with its calendar, policies and labels', async () => {
    const config = configWith({});
    const first = await applySchedules(client, config);
    const expected = [
      'all/full-daily',
      'all/verify-daily',
      'base-weekly',
      'health',
      'pitr-rehearsal-weekly',
      'wal-maintenance',
    ].map((j) => `pgwarden/${name}/${j}`);
    expect(first.created.sort()).toEqual(expected);
    const second = await applySchedules(client, config);
    expect(second).toEqual({ created: [], updated: [], unchanged: expect.arrayContaining(expected), deleted: [] });
    // The server's schedule list lags a create by a moment.
    await expect.poll(() => ownedScheduleIds(client, config), { timeout: 10_000 }).toEqual(expected);

    const full = await client.schedule.getHandle(`pgwarden/${name}/all/full-daily`).describe();
    expect(full.policies).toMatchObject({ overlap: 'SKIP', pauseOnFailure: false, catchupWindow: 3_600_000 });
    expect(full.spec.calendars?.[0]).toMatchObject({
      hour: [{ start: 2, end: 2, step: 1 }],
      minute: [{ start: 0, end: 0, step: 1 }],
    });
    expect(full.spec.timezone).toBe('UTC');
    expect(full.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: 'fullBackup',
      taskQueue: queue,
      args: [{ cluster: name, database: '*' }],
    });
    expect(full.action.type === 'startWorkflow' && full.action.memo).toMatchObject({
      cluster: name,
      database: '*',
      kind: 'full',
    });
    // Weekly: Sunday 03:00.
    const base = await client.schedule.getHandle(`pgwarden/${name}/base-weekly`).describe();
    expect(base.info.nextActionTimes[0]!.getUTCDay()).toBe(0);
    expect(base.info.nextActionTimes[0]!.getUTCHours()).toBe(3);
  });

  it('a changed config updates, adds and removes exactly what changed; a paused schedule stays paused', async () => {
    await client.schedule.getHandle(`pgwarden/${name}/wal-maintenance`).pause('INC-1: disk swap');
    const config = configWith(
      { databases: ['app'], schedules: { 'base-weekly': false, 'wal-maintenance': { cron: '30 3 * * *' } } },
      { schedules: { timeZone: 'Europe/Berlin' } },
    );
    const report = await applySchedules(client, config);
    expect(report.created.sort()).toEqual([`pgwarden/${name}/app/full-daily`, `pgwarden/${name}/app/verify-daily`]);
    expect(report.deleted.sort()).toEqual([
      `pgwarden/${name}/all/full-daily`,
      `pgwarden/${name}/all/verify-daily`,
      `pgwarden/${name}/base-weekly`,
    ]);
    // The time zone changed for every remaining one.
    expect(report.updated.sort()).toEqual([
      `pgwarden/${name}/health`,
      `pgwarden/${name}/pitr-rehearsal-weekly`,
      `pgwarden/${name}/wal-maintenance`,
    ]);
    const wal = await client.schedule.getHandle(`pgwarden/${name}/wal-maintenance`).describe();
    expect(wal.spec.timezone).toBe('Europe/Berlin');
    expect(wal.spec.calendars?.[0]).toMatchObject({ minute: [{ start: 30, end: 30, step: 1 }] });
    expect(wal.state).toMatchObject({ paused: true, note: 'INC-1: disk swap' });
    expect((await applySchedules(client, config)).unchanged).toHaveLength(5);

    // What `schedules list` prints, through the CLI.
    const configFile = join(dir, 'pgwarden.config.json');
    await writeFile(configFile, JSON.stringify({ ...config, clusters: { [name]: { ...config.clusters[name] } } }));
    const list = await execa(PGWARDEN, ['--config', configFile, 'schedules', 'list'], {
      reject: false,
      env: { PGWARDEN_FROM_SOURCE: '1' },
    });
    expect(list.exitCode, list.stderr).toBe(0);
    expect(list.stdout).toContain(
      `pgwarden/${name}/wal-maintenance  walMaintenance  30 3 * * * (Europe/Berlin)  PAUSED (INC-1: disk swap)`,
    );
    expect(list.stdout).toContain(`pgwarden/${name}/health  healthCheck  every 15 minutes`);
    const bad = await execa(PGWARDEN, ['--config', configFile, 'schedules', 'trigger', `pgwarden/${name}/nope`], {
      reject: false,
      env: { PGWARDEN_FROM_SOURCE: '1' },
    });
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toEqual([
      `pgwarden: no schedule pgwarden/${name}/nope (see: pgwarden schedules list)`,
    ]);
  });

  it('trigger starts a run that completes on the real worker, and list shows its result', async () => {
    const config = configWith(
      { databases: ['app'], schedules: { 'base-weekly': false, 'wal-maintenance': { cron: '30 3 * * *' } } },
      { schedules: { timeZone: 'Europe/Berlin' } },
    );
    worker = await startPgwardenWorker(env, config, { [PASSWORD_ENV]: cluster.password });
    const id = `pgwarden/${name}/wal-maintenance`;
    const workflowId = await triggerSchedule(client, id);
    expect(workflowId.startsWith(`${id}-`)).toBe(true);
    const result = (await client.workflow.getHandle(workflowId).result()) as { cluster: string };
    expect(result.cluster).toBe(name);
    const described = await client.workflow.getHandle(workflowId).describe();
    expect(described.memo).toMatchObject({ cluster: name, kind: 'wal-maintenance' });
    const row = (await listSchedules(client, config)).find((r) => r.id === id)!;
    expect(row.lastRun).toMatchObject({ workflowId, status: 'COMPLETED' });
    // The same through the CLI, waiting for the result as a script would.
    const configFile = join(dir, 'pgwarden.config.json');
    await writeFile(configFile, JSON.stringify(config));
    const cli = await execa(PGWARDEN, ['--config', configFile, 'schedules', 'trigger', id, '--wait', '--json'], {
      reject: false,
      env: { PGWARDEN_FROM_SOURCE: '1' },
    });
    expect(cli.exitCode, cli.stderr).toBe(0);
    const printed = JSON.parse(cli.stdout) as { workflowId: string; result: { cluster: string } };
    expect(printed.workflowId.startsWith(`${id}-`)).toBe(true);
    expect(printed.result.cluster).toBe(name);
    // `schedules list` in the operator's local time, with its zone, and how far the next run is.
    const listed = await execa(PGWARDEN, ['--config', configFile, 'schedules', 'list'], {
      reject: false,
      env: { PGWARDEN_FROM_SOURCE: '1', TZ: 'America/New_York' },
    });
    expect(listed.exitCode, listed.stderr).toBe(0);
    const lines = listed.stdout.split('\n');
    const lineAfter = (head: string) =>
      lines[lines.findIndex((l) => l.startsWith(head)) + 1] ?? `no line ${head} in:\n${listed.stdout}`;
    // wal-maintenance was paused above (and triggered by hand): no next run, its last run in New York time.
    expect(lineAfter(`${id}  walMaintenance  30 3 * * * (Europe/Berlin)  PAUSED`)).toMatch(
      /^ {4}next - \(paused\); last (Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{4}-\d\d-\d\d \d\d:\d\d E[SD]T completed$/,
    );
    // 02:00 in Berlin is 20:00 or 21:00 the day before in New York.
    const full = `pgwarden/${name}/app/full-daily`;
    const next = (await listSchedules(client, config)).find((r) => r.id === full)!.nextRuns;
    const fullNext = lineAfter(`${full}  fullBackup  0 2 * * * (Europe/Berlin)`);
    expect(fullNext).toMatch(
      /^ {4}next (Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{4}-\d\d-\d\d 2[01]:00 E[SD]T \(in (\d+h\d\dm|\d+m\d\ds|\d+s)\), .*; not run yet$/,
    );
    expect(fullNext).toContain(`next ${formatZonedTime(new Date(next[0]!), 'America/New_York')} (in `);
    expect(listed.stdout).not.toMatch(/\d{4}-\d\d-\d\dT\d\d:\d\d/); // no raw ISO times
  });
});

// What the Temporal UI and `temporal workflow describe` show of a run pgwarden started (its summary
// and details), that a run started the README's bare way (`temporal workflow start --input ...`:
// no id, no labels) is still found by `pgwarden list --cluster`, that a namespace without the
// search attributes never sees such a run fail for it, and that a schedule carries its note. Real
// dev server, real worker, real PostgreSQL.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { parseConfig, type Config } from '../../src/config/index.js';
import { clusterKey, databaseKey, kindKey, SEARCH_ATTRIBUTE_NAMES } from '../../src/lib/visibility.js';
import { temporalBinary } from '../../src/worker/devServer.js';
import { PASSWORD_ENV, testSecrets } from '../helpers/config.js';
import { startCluster, type TestCluster } from '../helpers/postgres.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

const PGWARDEN = resolve('bin/pgwarden');
// A cluster name of this file's own: schedules and `pgwarden list --cluster` are namespace-wide.
const name = `meta${randomBytes(3).toString('hex')}`;
const queue = uniqueQueue('run-metadata');
let cluster: TestCluster;
let env: TestWorkflowEnvironment;
let dir: string;
let config: Config;
let worker: RunningWorker;
const workers: RunningWorker[] = [];

const cliEnv = () => ({
  TEMPORAL_ADDRESS: inject('temporalAddress'),
  PGWARDEN_CONFIG: join(dir, 'pgwarden.config.json'),
  [PASSWORD_ENV]: cluster.password,
});
const pgwarden = (...args: string[]) => execa(PGWARDEN, args, { env: cliEnv() });
const temporal = async (...args: string[]) =>
  (await execa(temporalBinary()!, [...args, '--address', inject('temporalAddress')])).stdout;

/** The user metadata `temporal workflow describe -o json` prints (payloads as the CLI shows them). */
async function describeJson(workflowId: string, namespace = 'default'): Promise<Record<string, unknown>> {
  return JSON.parse(await temporal('workflow', 'describe', '-w', workflowId, '--namespace', namespace, '-o', 'json'));
}

/** Every string in a JSON value, base64 payload data decoded (the CLI may print either). */
function strings(value: unknown): string[] {
  if (typeof value === 'string') {
    const decoded =
      /^[A-Za-z0-9+/]+=*$/.test(value) && value.length % 4 === 0 ? Buffer.from(value, 'base64').toString('utf8') : '';
    return decoded && /^[\x09\x0a\x20-\x7e\u00a0-\uffff]*$/.test(decoded) ? [value, decoded] : [value];
  }
  if (value && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

/** The summary and details `describe` shows, as text. */
async function metadataOf(workflowId: string): Promise<{ summary: string; details: string }> {
  const json = await describeJson(workflowId);
  const metadata = (json.executionConfig as { userMetadata?: { summary?: unknown; details?: unknown } } | undefined)
    ?.userMetadata;
  expect(metadata, JSON.stringify(json).slice(0, 2000)).toBeDefined();
  return { summary: strings(metadata!.summary).join('\n'), details: strings(metadata!.details).join('\n') };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-run-metadata-'));
  [cluster, env] = await Promise.all([startCluster(), testEnvironment()]);
  await cluster.query('CREATE DATABASE app');
  await cluster.query(
    'CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 100)',
    'app',
  );
  config = parseConfig({
    temporal: { address: inject('temporalAddress'), taskQueue: queue },
    clusters: {
      [name]: {
        host: cluster.host,
        port: cluster.port,
        user: cluster.user,
        passwordEnv: PASSWORD_ENV,
        databases: ['app'],
        // One schedule is enough to see its note; none of them runs during the test.
        schedules: {
          'wal-maintenance': false,
          'verify-daily': false,
          'base-weekly': false,
          'pitr-rehearsal-weekly': false,
          health: false,
        },
      },
    },
    repositories: { local: { type: 'local', path: join(dir, 'repo') } },
    worker: { host: queue },
  });
  await writeFile(cliEnv().PGWARDEN_CONFIG, JSON.stringify(config));
  worker = await startPgwardenWorker(env, config, testSecrets(cluster));
}, 120_000);

afterAll(async () => {
  await env?.client.schedule
    .getHandle(`pgwarden/${name}/app/full-daily`)
    .delete()
    .catch(() => undefined);
  await Promise.all([worker?.stop(), ...workers.map((w) => w.stop())]);
  await Promise.all([cluster?.stop(), env?.teardown()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('what the console shows of a run', () => {
  it('a backup started by the CLI, and each of its per-database children, carries a summary and its input', async () => {
    const { stdout } = await pgwarden('backup', '--cluster', name, '--database', '*', '--wait');
    const id = /started fullBackup (\S+)/.exec(stdout)?.[1];
    expect(id, stdout).toBeDefined();
    const parent = await metadataOf(id!);
    expect(parent.summary).toContain(`Logical backup of every database of ${name}`);
    expect(parent.details).toContain('Started by the pgwarden CLI');
    expect(parent.details).toContain(`- cluster: \`${name}\``);
    expect(parent.details).toContain('- database: `*`');
    // The children: one per database, named by the parent's run.
    const children = [];
    for await (const w of env.client.workflow.list({ query: `ParentWorkflowId = '${id}'` }))
      children.push(w.workflowId);
    expect(children.length).toBeGreaterThanOrEqual(2);
    const app = children.find((c) => c.includes(`/${name}/app/`));
    expect(app, children.join(', ')).toBeDefined();
    const child = await metadataOf(app!);
    expect(child.summary).toContain(`Logical backup of ${name}/app`);
    expect(child.details).toContain(`Started by fullBackup ${id}`);
    expect(child.details).toContain('- allDatabases: `true`');
  }, 120_000);

  it('a run started the bare way labels itself and is listed by pgwarden list --cluster', async () => {
    const started = JSON.parse(
      await temporal(
        'workflow',
        'start',
        '--type',
        'fullBackup',
        '--task-queue',
        queue,
        '--input',
        JSON.stringify({ cluster: name, database: 'app' }),
        '-o',
        'json',
      ),
    ) as { workflowId: string };
    const handle = env.client.workflow.getHandle(started.workflowId);
    await handle.result();
    const description = await handle.describe();
    expect(description.typedSearchAttributes.get(clusterKey)).toBe(name);
    expect(description.typedSearchAttributes.get(databaseKey)).toBe('app');
    expect(description.typedSearchAttributes.get(kindKey)).toBe('full');
    expect(description.memo).toMatchObject({ cluster: name, database: 'app', kind: 'full' });
    // The server's visibility store lags a moment, as for an operator.
    let listed = '';
    for (let i = 0; i < 40 && !listed.includes(started.workflowId); i++) {
      if (i) await new Promise((r) => setTimeout(r, 500));
      listed = (await pgwarden('list', '--cluster', name, '--json')).stdout;
    }
    expect(listed).toContain(started.workflowId);
    expect(
      JSON.parse(
        await temporal(
          'workflow',
          'list',
          '--query',
          `PgwardenCluster='${name}' AND PgwardenKind='full'`,
          '-o',
          'json',
        ),
      ).map((w: { execution: { workflowId: string } }) => w.execution.workflowId),
    ).toContain(started.workflowId);
  }, 120_000);

  it('on a namespace without the search attributes, a bare run keeps its memo and never fails for the labels', async () => {
    const namespace = `nosa-${randomBytes(3).toString('hex')}`;
    await temporal('operator', 'namespace', 'create', '--namespace', namespace);
    const attributes = await env.client.connection.operatorService.listSearchAttributes({ namespace });
    expect(SEARCH_ATTRIBUTE_NAMES.some((n) => n in (attributes.customAttributes ?? {}))).toBe(false);
    const nsQueue = uniqueQueue('run-metadata-nosa');
    workers.push(
      await startPgwardenWorker(
        env,
        { ...config, temporal: { ...config.temporal, namespace, taskQueue: nsQueue } },
        testSecrets(cluster),
      ),
    );
    const workflowId = `bare-${namespace}`;
    // The new namespace takes a moment to be known everywhere.
    for (let i = 0; ; i++) {
      const r = await execa(
        temporalBinary()!,
        [
          'workflow',
          'start',
          '--type',
          'healthCheck',
          '--task-queue',
          nsQueue,
          '-w',
          workflowId,
          '--namespace',
          namespace,
          '--input',
          JSON.stringify({ cluster: name }),
          '--address',
          inject('temporalAddress'),
        ],
        { reject: false },
      );
      if (r.exitCode === 0) break;
      if (i > 30) throw new Error(r.stderr);
      await new Promise((res) => setTimeout(res, 1000));
    }
    // Upserting an unknown attribute would fail every workflow task: the run would never close.
    const r = await execa(
      temporalBinary()!,
      [
        'workflow',
        'result',
        '-w',
        workflowId,
        '--namespace',
        namespace,
        '--address',
        inject('temporalAddress'),
        '-o',
        'json',
      ],
      { reject: false, timeout: 60_000 },
    );
    expect(r.timedOut).toBe(false);
    const history = (
      await execa(temporalBinary()!, [
        'workflow',
        'show',
        '-w',
        workflowId,
        '--namespace',
        namespace,
        '--address',
        inject('temporalAddress'),
        '-o',
        'json',
      ])
    ).stdout;
    expect(history).not.toMatch(/WorkflowTaskFailed|WORKFLOW_TASK_FAILED/i);
    expect(history).toContain('core_local_activity'); // the worker asked the server
    const described = await describeJson(workflowId, namespace);
    expect(strings(described).join('\n')).toContain(name); // the memo
    expect(JSON.stringify(described)).not.toContain('PgwardenCluster');
  }, 120_000);

  it('a schedule from pgwarden schedules apply carries its note, and its runs a summary', async () => {
    await pgwarden('schedules', 'apply');
    const id = `pgwarden/${name}/app/full-daily`;
    const described = JSON.parse(await temporal('schedule', 'describe', '-s', id, '-o', 'json'));
    expect(described.schedule.state.notes).toBe(`logical backup (pg_dump) of ${name}/app, every day at 02:00 UTC`);
    const text = strings(described).join('\n');
    expect(text).toContain(`Logical backup of ${name}/app`); // the runs' summary
    expect(text).toContain(
      `Started by schedule ${id} (every day at 02:00 UTC): logical backup (pg_dump) of ${name}/app`,
    );
    expect((await env.client.schedule.getHandle(id).describe()).memo).toEqual({
      description: `logical backup (pg_dump) of ${name}/app`,
      timing: 'every day at 02:00 UTC',
    });
  }, 60_000);
});

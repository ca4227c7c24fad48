// `pgwarden` as operators run it (bin/pgwarden in a subprocess, stdout not a terminal) against the
// test run's Temporal dev server, with pgwarden's real workflows on stubbed activities: one-line
// errors, help with examples, `list`, `status`, `approve`, and the plain progress lines of --wait.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execa, type Result } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { LogicalBackupInput, LogicalBackupResult } from '../../src/activities/index.js';
import type { Progress } from '../../src/workflows/messages.js';
import { freePort } from '../helpers/ports.js';
import {
  startStubWorker,
  testEnvironment,
  uniqueQueue,
  waitForHeartbeat,
  type RunningWorker,
} from '../helpers/temporal.js';

const PGWARDEN = join(import.meta.dirname, '../../bin/pgwarden');
const backupId = '20261122T020000Z';
const cluster = `cli${randomBytes(3).toString('hex')}`;
const queue = uniqueQueue('cli');
const unpolled = uniqueQueue('cli-nobody');

let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let dir: string;
let configFile: string;
let releaseDump!: () => void;
const dumpReleased = new Promise<void>((r) => (releaseDump = r));

const stubs = {
  preflightLogicalBackup: async () => ({
    serverVersion: '15.18',
    databaseBytes: 1,
    expectedBytes: 1,
    freeBytes: 2,
    recipients: [],
    backupExists: false,
  }),
  // Heartbeats a growing byte count until the test has looked at it.
  createLogicalBackup: async (input: LogicalBackupInput): Promise<LogicalBackupResult> => {
    let bytes = 0;
    let released = false;
    void dumpReleased.then(() => (released = true));
    while (!released) {
      bytes += 3 * 1024 * 1024;
      Context.current().heartbeat({ phase: 'dump', storedBytes: bytes });
      await Context.current().sleep(200);
    }
    return {
      ...input,
      path: `/repo/${input.cluster}/logical/${input.database}/${input.backupId}`,
      bytes,
      sha256: '0'.repeat(64),
      tables: 1,
      rows: 1,
      encrypted: false,
      seconds: 1,
      reused: false,
    };
  },
  applyLogicalRetention: async () => ({ keep: [], delete: [] }),
  fetchLogicalFromOffsite: async () => ({ fetched: [] }),
  planVerify: async (i: { cluster: string; database: string }) => ({
    cluster: i.cluster,
    database: i.database,
    backupId,
  }),
  checkIntegrity: async () => ({}),
  notifyApproval: async () => ({}),
  runRestoreHook: async () => undefined,
  restoreIntoScratch: async () => ({ restoreSeconds: 1 }),
  compareWithManifest: async () => ({ tables: 1, rows: 1, checks: [] }),
  swapDatabases: async () => undefined,
  analyzeDatabase: async () => undefined,
  dropScratchDatabase: async () => undefined,
};

function pgwarden(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  return execa(PGWARDEN, ['--config', configFile, ...args], {
    env: {
      PGWARDEN_FROM_SOURCE: '1',
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      PGWARDEN_TASK_QUEUE: queue,
      ...extraEnv,
    },
    stdin: 'ignore',
    reject: false,
  });
}

/** Asserts the one-line error contract: non-zero exit, nothing on stdout, one `pgwarden: ` line. */
function expectOneLineError(r: Result, line: string | RegExp): void {
  expect(r.exitCode, `${r.command}\n${String(r.stdout)}\n${String(r.stderr)}`).not.toBe(0);
  expect(r.stdout).toBe('');
  const stderr = String(r.stderr);
  expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(stderr).toMatch(/^pgwarden: /);
  expect(stderr).not.toMatch(/\n\s+at |Usage:/);
  if (typeof line === 'string') expect(stderr.trimEnd()).toBe(line);
  else expect(stderr.trimEnd()).toMatch(line);
}

async function waitForStep(workflowId: string, step: string): Promise<void> {
  const handle = env.client.workflow.getHandle(workflowId);
  for (let i = 0; i < 150; i++) {
    if ((await handle.query<Progress>('progress').catch(() => undefined))?.step === step) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${workflowId} never reached step ${step}`);
}

/** Retries a `pgwarden list` until its output holds `text` (visibility trails the start a little). */
async function listUntil(args: string[], text: string): Promise<string> {
  let stdout = '';
  for (let i = 0; i < 10; i++) {
    const r = await pgwarden(['list', ...args]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    stdout = String(r.stdout);
    if (stdout.includes(text)) return stdout;
    await new Promise((r) => setTimeout(r, 500));
  }
  return stdout;
}

beforeAll(async () => {
  env = await testEnvironment();
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-cli-test-'));
  configFile = join(dir, 'pgwarden.config.json');
  const config = {
    temporal: { address: inject('temporalAddress'), taskQueue: queue },
    clusters: { [cluster]: { host: '127.0.0.1', port: 5432, user: 'backup' } },
    repositories: { local: { type: 'local', path: join(dir, 'repo') } },
  };
  await writeFile(configFile, JSON.stringify(config, null, 2));
  worker = await startStubWorker(env, queue, stubs);
}, 120_000);

afterAll(async () => {
  releaseDump();
  if (env) {
    for await (const w of env.client.workflow.list({
      query: `ExecutionStatus = 'Running' AND TaskQueue IN ('${queue}', '${unpolled}')`,
    })) {
      await env.client.workflow
        .getHandle(w.workflowId)
        .terminate('test over')
        .catch(() => undefined);
    }
  }
  await worker?.stop();
  await env?.teardown();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('mistakes print one line and exit non-zero', () => {
  it('usage mistakes name the help to read, never print it', async () => {
    const [flag, typo, beforeRequired, command, argument, kind, group, value] = await Promise.all([
      pgwarden(['backup', '--cluster', cluster, '--database', 'app', '--wiat']),
      pgwarden(['verify', '--cluster', cluster, '--database', 'app', '--backup-idd', backupId]),
      // commander checks required options first: the typo'd --database is named, not "required option".
      pgwarden(['restore', '--cluster', cluster, '--databse', 'app']),
      pgwarden(['bakcup']),
      pgwarden(['status']),
      pgwarden(['list', '--kind', 'nope']),
      pgwarden(['offsite']),
      pgwarden(['pitr', '--cluster', cluster]),
    ]);
    expectOneLineError(flag, "pgwarden: unknown option '--wiat' (did you mean --wait?) (see: pgwarden backup --help)");
    expectOneLineError(
      typo,
      "pgwarden: unknown option '--backup-idd' (did you mean --backup-id?) (see: pgwarden verify --help)",
    );
    expectOneLineError(
      beforeRequired,
      "pgwarden: unknown option '--databse' (did you mean --database?) (see: pgwarden restore --help)",
    );
    expectOneLineError(command, /^pgwarden: unknown command 'bakcup'.* \(see: pgwarden --help\)$/);
    expectOneLineError(argument, "pgwarden: missing required argument 'workflowId' (see: pgwarden status --help)");
    expectOneLineError(
      kind,
      /^pgwarden: option '--kind <kind>' argument 'nope' is invalid\. Allowed choices are full, base, .* \(see: pgwarden list --help\)$/,
    );
    expectOneLineError(group, 'pgwarden: offsite needs a command: sync, check (see: pgwarden offsite --help)');
    expectOneLineError(
      value,
      'pgwarden: give exactly one of --target-time, --target-lsn, --target-name, --latest (see: pgwarden pitr --help)',
    );
  });

  it('an unknown workflow, an unknown cluster, an unreachable Temporal', async () => {
    const id = `pgwarden/${cluster}/app/full/nope`;
    const [status, approve, reject, unknownCluster, unreachable] = await Promise.all([
      pgwarden(['status', id]),
      pgwarden(['approve', id, '--approver', 'alice', '--reason', 'test']),
      pgwarden(['reject', id, '--approver', 'alice', '--reason', 'test']),
      pgwarden(['backup', '--cluster', 'nope', '--database', 'app']),
      freePort().then((port) => pgwarden(['list'], { TEMPORAL_ADDRESS: `127.0.0.1:${port}` })),
    ]);
    expectOneLineError(status, `pgwarden: no workflow ${id}`);
    expectOneLineError(approve, `pgwarden: no workflow ${id}`);
    expectOneLineError(reject, `pgwarden: no workflow ${id}`);
    expectOneLineError(unknownCluster, `pgwarden: unknown cluster "nope" (configured: ${cluster})`);
    expectOneLineError(
      unreachable,
      /^pgwarden: cannot reach Temporal at 127\.0\.0\.1:\d+ \(connection refused\); is the server running\? set temporal\.address in the config \(or TEMPORAL_ADDRESS\)$/,
    );
  });

  it('the worker against a closed port or an unknown host exits with one readable line, not the transport error', async () => {
    const [refused, unknownHost] = await Promise.all([
      freePort().then((port) => pgwarden(['worker'], { TEMPORAL_ADDRESS: `127.0.0.1:${port}` })),
      pgwarden(['worker'], { TEMPORAL_ADDRESS: 'temporal.invalid:7233' }),
    ]);
    expectOneLineError(
      refused,
      /^pgwarden: cannot reach Temporal at 127\.0\.0\.1:\d+ \(connection refused\); is the server running\? set temporal\.address in the config \(or TEMPORAL_ADDRESS\)$/,
    );
    expectOneLineError(
      unknownHost,
      'pgwarden: cannot reach Temporal at temporal.invalid:7233 (host not found); is the server running? set temporal.address in the config (or TEMPORAL_ADDRESS)',
    );
    for (const r of [refused, unknownHost]) expect(String(r.stderr)).not.toMatch(/tonic|transport/);
  });
});

it('help shows examples, on stdout, with exit 0', async () => {
  const results = await Promise.all(
    [
      ['--help'],
      ['list', '--help'],
      ['status', '--help'],
      ['help', 'backup'],
      ['offsite', '--help'],
      ['dev', '--help'],
      ['cluster', '--help'],
      ['schedules', '--help'],
    ].map((a) => pgwarden(a)),
  );
  for (const r of results) {
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/\nExamples?:\n {2}pgwarden /);
    expect(r.stderr).toBe('');
  }
  expect(results[0]!.stdout).toContain('  list [options]');
  expect(results[1]!.stdout).toContain('pgwarden list --cluster main --kind full');
});

it('backup --wait prints plain progress lines; list and status show the run while it dumps', async () => {
  const workflowId = `pgwarden/${cluster}/app/full/${backupId}`;
  const backup = pgwarden(['backup', '--cluster', cluster, '--database', 'app', '--backup-id', backupId, '--wait'], {
    PGWARDEN_DEBUG: '1',
  });
  let printed = '';
  backup.stdout?.on('data', (d: Buffer) => (printed += d.toString()));
  try {
    const handle = env.client.workflow.getHandle(workflowId);
    for (
      let i = 0;
      !(await handle.describe().then(
        () => true,
        () => false,
      ));
      i++
    ) {
      if (i > 100) throw new Error(`pgwarden backup did not start ${workflowId}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await waitForHeartbeat(handle, (hb) => (hb.storedBytes as number) > 0, 30_000);
    const listed = await listUntil(['--cluster', cluster, '--kind', 'full'], workflowId);
    expect(listed.split('\n')[0]).toMatch(/^WORKFLOW ID +KIND +STATUS +STARTED +DURATION$/);
    expect(listed).toMatch(
      new RegExp(`^${workflowId} +full +running +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d +\\d`, 'm'),
    );

    const status = await pgwarden(['status', workflowId]);
    expect(status.exitCode, String(status.stderr)).toBe(0);
    expect(status.stdout).toContain(`${workflowId}  fullBackup (full), cluster ${cluster}, database app`);
    expect(status.stdout).toMatch(/^ {2}status {4}running for /m);
    expect(status.stdout).toMatch(/^ {2}step {6}dump for .*\(since /m);
    expect(status.stdout).toMatch(/^ {2}done {6}preflight$/m);
    expect(status.stdout).toMatch(/^ {2}activity {2}createLogicalBackup: dump, [\d.]+ MiB stored/m);
    // The dump goes on until the waiting CLI has polled it at least once (every 2 s).
    for (let i = 0; !/^ {2}dump: /m.test(printed); i++) {
      if (i > 150) throw new Error(`backup --wait printed no dump progress:\n${printed}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    releaseDump();
  }
  const r = await backup;
  expect(r.exitCode, String(r.stderr)).toBe(0);
  const stdout = String(r.stdout);
  expect(stdout).not.toMatch(/\x1b|\r/);
  expect(stdout.split('\n')[0]).toBe(`started fullBackup ${workflowId}`);
  expect(stdout).toMatch(/^ {2}dump: [\d.]+ MiB stored.* \(\d+s\)$/m);
  expect(stdout).toMatch(new RegExp(`^${cluster}/app ${backupId}: [\\d.]+ MiB stored, 1 tables, 1 rows`, 'm'));

  const done = await listUntil(['--cluster', cluster, '--kind', 'full', '--status', 'completed', '--json'], workflowId);
  expect(JSON.parse(done)).toEqual([
    expect.objectContaining({ workflowId, kind: 'full', status: 'completed', cluster, database: 'app' }),
  ]);
});

it('a run no worker polls: list --status running shows it, status and approve answer without hanging', async () => {
  const started = await pgwarden(['backup', '--cluster', cluster, '--database', 'orphan', '--json'], {
    PGWARDEN_TASK_QUEUE: unpolled,
  });
  expect(started.exitCode, String(started.stderr)).toBe(0);
  const { workflowId } = JSON.parse(String(started.stdout)) as { workflowId: string };
  expect(await listUntil(['--cluster', cluster, '--status', 'running'], workflowId)).toMatch(
    new RegExp(`^${workflowId} +full +running `, 'm'),
  );

  const t = Date.now();
  const [status, approve] = await Promise.all([
    pgwarden(['status', workflowId]),
    pgwarden(['approve', workflowId, '--approver', 'alice', '--reason', 'test']),
  ]);
  expect(Date.now() - t).toBeLessThan(15_000);
  expectOneLineError(
    approve,
    `pgwarden: cannot tell whether ${workflowId} waits for approval: no worker answered its progress query (is a worker running on "${unpolled}"?)`,
  );
  expect(status.exitCode, String(status.stderr)).toBe(0);
  expect(status.stdout).toMatch(/^ {2}step {6}unknown \(no worker answered the progress query within 3s\)$/m);
  expect(status.stdout).toContain(`is a worker running on task queue "${unpolled}"?`);
});

it('a restore at its approval: status shows what would be done and the command; approve lets it go on', async () => {
  const workflowId = `pgwarden/${cluster}/app/restore/${backupId}`;
  const started = await pgwarden(['restore', '--cluster', cluster, '--database', 'app', '--backup-id', backupId]);
  expect(started.exitCode, String(started.stderr)).toBe(0);
  await waitForStep(workflowId, 'approve');

  const status = await pgwarden(['status', workflowId]);
  expect(status.exitCode, String(status.stderr)).toBe(0);
  expect(status.stdout).toMatch(/^ {2}step {6}approve for /m);
  expect(status.stdout).toMatch(
    /^ {2}waiting {3}for approval until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(23h59m left; then it ends, nothing done\); nothing live has been touched yet$/m,
  );
  expect(status.stdout).toMatch(
    new RegExp(
      `^ {2}would {5}restore ${cluster}/app from backup ${backupId}; the live database is kept as app_pre_restore_${backupId.toLowerCase()}_[0-9a-f]{6}\\.`,
      'm',
    ),
  );
  expect(status.stdout).toContain(`  approve   pgwarden approve ${workflowId} --approver NAME --reason TEXT`);
  const json = JSON.parse(String((await pgwarden(['status', workflowId, '--json'])).stdout)) as Record<string, unknown>;
  expect(json).toMatchObject({
    workflowId,
    kind: 'restore',
    status: 'running',
    progress: { step: 'approve' },
    approval: { approve: `pgwarden approve ${workflowId} --approver NAME --reason TEXT` },
  });

  const approved = await pgwarden(['approve', workflowId, '--approver', 'alice', '--reason', 'cli test']);
  expect(approved.exitCode, String(approved.stderr)).toBe(0);
  expect(approved.stdout).toBe(`approved ${workflowId} as alice: cli test\n`.trimEnd());
  expect(await env.client.workflow.getHandle(workflowId).result()).toMatchObject({
    outcome: 'restored',
    decision: { approver: 'alice' },
  });

  const again = await pgwarden(['approve', workflowId, '--approver', 'alice', '--reason', 'twice']);
  expectOneLineError(again, `pgwarden: ${workflowId} is not waiting for approval (step: done)`);
});

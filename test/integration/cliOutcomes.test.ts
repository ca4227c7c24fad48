// `pgwarden` says what happened, against real PostgreSQL and Temporal (bin/pgwarden in a subprocess,
// a real worker): backup --verify and verify report the verification; a corrupt dump fails verify in
// one line; a restore that fails in its plan exits non-zero without --wait instead of promising an
// approval; status of a rejected, an unanswered, a failed and a completed run names the outcome and
// exits 0, 3 or 4.
import { open, readdir, rm, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseConfig, type ConfigInput } from '../../src/config/index.js';
import { PASSWORD_ENV, testSecrets } from '../helpers/config.js';
import { createSampleDatabase } from '../helpers/data.js';
import { startCluster, type TestCluster } from '../helpers/postgres.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

const PGWARDEN = join(import.meta.dirname, '../../bin/pgwarden');
const queue = uniqueQueue('cli-outcomes');
const good = '20261122T020000Z';
const corrupt = '20261122T030000Z';

let cluster: TestCluster;
let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let dir: string;
let configFile: string;

function pgwarden(args: string[]) {
  return execa(PGWARDEN, ['--config', configFile, ...args], {
    env: { PGWARDEN_FROM_SOURCE: '1', TEMPORAL_ADDRESS: inject('temporalAddress'), PGWARDEN_TASK_QUEUE: queue },
    stdin: 'ignore',
    reject: false,
  });
}

const lines = (text: unknown) => String(text).trimEnd().split('\n');

beforeAll(async () => {
  [cluster, env] = await Promise.all([startCluster(), testEnvironment()]);
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-cli-outcomes-'));
  await createSampleDatabase(cluster, 'app', 0.05);
  const input: ConfigInput = {
    temporal: { address: inject('temporalAddress'), taskQueue: queue },
    clusters: {
      main: {
        host: cluster.host,
        port: cluster.port,
        user: cluster.user,
        passwordEnv: PASSWORD_ENV,
        dataDirectory: cluster.dataDir,
      },
    },
    repositories: { local: { type: 'local', path: join(dir, 'repo') } },
    worker: { host: queue },
  };
  configFile = join(dir, 'pgwarden.config.json');
  await writeFile(configFile, JSON.stringify(input, null, 2));
  worker = await startPgwardenWorker(env, parseConfig(input), testSecrets(cluster));
}, 120_000);

afterAll(async () => {
  if (env) {
    for await (const w of env.client.workflow.list({
      query: `ExecutionStatus = 'Running' AND TaskQueue = '${queue}'`,
    })) {
      await env.client.workflow
        .getHandle(w.workflowId)
        .terminate('test over')
        .catch(() => undefined);
    }
  }
  await worker?.stop();
  await env?.teardown();
  await Promise.all([cluster?.stop(), dir && rm(dir, { recursive: true, force: true })]);
});

describe('pgwarden says what happened', () => {
  it('backup --verify and verify --wait report the verification; status of the completed run says verified, exit 0', async () => {
    const backup = await pgwarden([
      'backup',
      '--cluster',
      'main',
      '--database',
      'app',
      '--backup-id',
      good,
      '--verify',
      '--wait',
    ]);
    expect(backup.exitCode, String(backup.stderr)).toBe(0);
    expect(backup.stdout).toMatch(new RegExp(`^main/app ${good}: .* stored, 5 tables, \\d+ rows`, 'm'));
    expect(backup.stdout).toMatch(
      new RegExp(`^verified main/app ${good}: restored in [\\d.]+s, 5 tables, \\d+ rows as in its manifest$`, 'm'),
    );

    const verify = await pgwarden(['verify', '--cluster', 'main', '--database', 'app', '--backup-id', good, '--wait']);
    expect(verify.exitCode, String(verify.stderr)).toBe(0);
    const id = `pgwarden/main/app/verify/${good}`;
    expect(lines(verify.stdout)[0]).toBe(`started verifyBackup ${id}`);
    expect(lines(verify.stdout).at(-1)).toMatch(
      new RegExp(`^verified main/app ${good}: restored in [\\d.]+s, 5 tables, \\d+ rows as in its manifest$`),
    );

    const status = await pgwarden(['status', id]);
    expect(status.exitCode, String(status.stderr)).toBe(0);
    expect(status.stdout).toMatch(/^ {2}status {4}completed after /m);
    expect(status.stdout).toMatch(
      new RegExp(`^ {2}outcome {3}verified main/app ${good}: 5 tables, \\d+ rows restored and compared$`, 'm'),
    );

    // "*" verifies each database of the repository's newest backups (here: app), as child runs.
    const all = await pgwarden(['verify', '--cluster', 'main', '--database', '*', '--wait', '--json']);
    expect(all.exitCode, String(all.stderr)).toBe(0);
    expect(JSON.parse(String(all.stdout))).toMatchObject({
      ok: true,
      databases: [expect.objectContaining({ database: 'app', backupId: good, ok: true })],
    });
  });

  it('a corrupt dump: verify --wait fails in one line naming it; status says failed with that line, exit 4', async () => {
    const backup = await pgwarden([
      'backup',
      '--cluster',
      'main',
      '--database',
      'app',
      '--backup-id',
      corrupt,
      '--wait',
    ]);
    expect(backup.exitCode, String(backup.stderr)).toBe(0);
    const backupDir = join(dir, 'repo/main/logical/app', corrupt);
    const dump = (await readdir(backupDir)).find((f) => f.startsWith('dump.'))!;
    const file = await open(join(backupDir, dump), 'r+');
    try {
      const { size } = await file.stat();
      const at = Math.floor(size / 2);
      const byte = Buffer.alloc(1);
      await file.read(byte, 0, 1, at);
      byte[0] = byte[0]! ^ 0xff;
      await file.write(byte, 0, 1, at);
    } finally {
      await file.close();
    }

    const verify = await pgwarden([
      'verify',
      '--cluster',
      'main',
      '--database',
      'app',
      '--backup-id',
      corrupt,
      '--wait',
    ]);
    expect(verify.exitCode).not.toBe(0);
    expect(lines(verify.stdout)[0]).toBe(`started verifyBackup pgwarden/main/app/verify/${corrupt}`);
    expect(verify.stdout).not.toMatch(/^verified/m);
    const stderr = lines(verify.stderr);
    expect(stderr).toHaveLength(1);
    expect(stderr[0]).toMatch(new RegExp(`^pgwarden: workflow failed: .*${dump.replace(/\./g, '\\.')}.*sha256`));

    const status = await pgwarden(['status', `pgwarden/main/app/verify/${corrupt}`]);
    expect(status.exitCode, String(status.stderr)).toBe(4);
    expect(status.stdout).toMatch(/^ {2}status {4}failed after /m);
    expect(status.stdout).toContain(`  outcome   failed: ${stderr[0]!.replace(/^pgwarden: workflow failed: /, '')}`);
  });

  it('restore of a backup that does not exist, without --wait: exits non-zero naming the error, promises no approval', async () => {
    const missing = '20200101T000000Z';
    const t = Date.now();
    const restore = await pgwarden(['restore', '--cluster', 'main', '--database', 'app', '--backup-id', missing]);
    expect(Date.now() - t).toBeLessThan(30_000);
    expect(restore.exitCode).toBe(1);
    expect(String(restore.stdout).trimEnd()).toBe(`started restoreDatabase pgwarden/main/app/restore/${missing}`);
    expect(lines(restore.stderr)).toEqual([
      expect.stringMatching(new RegExp(`^pgwarden: workflow failed: .*${missing}`)),
    ]);

    // The corrupt backup of the test before fails the same way: its checksums are verified in the plan, before anyone is asked.
    const bad = await pgwarden(['restore', '--cluster', 'main', '--database', 'app', '--backup-id', corrupt, '--json']);
    expect(bad.exitCode).toBe(1);
    expect(bad.stdout).toBe('');
    expect(lines(bad.stderr)).toEqual([expect.stringMatching(/^pgwarden: workflow failed: .*sha256/)]);

    // pitr the same: a target no base backup precedes fails in plan, before staging or an approval.
    const pitr = await pgwarden(['pitr', '--cluster', 'main', '--target-time', '2020-01-01 00:00:00+00']);
    expect(pitr.exitCode).toBe(1);
    expect(lines(pitr.stdout)).toEqual([
      expect.stringMatching(/^started pointInTimeRecovery pgwarden\/main\/pitr\/\S+ \(in-place\)$/),
    ]);
    expect(lines(pitr.stderr)).toEqual([expect.stringMatching(/^pgwarden: workflow failed: .*base backup/)]);
  });

  it('a rejected restore: returns at approve, then status names who rejected it and why, never how to approve, exit 3', async () => {
    const id = `pgwarden/main/app/restore/${good}`;
    const restore = await pgwarden(['restore', '--cluster', 'main', '--database', 'app', '--backup-id', good]);
    expect(restore.exitCode, String(restore.stderr)).toBe(0);
    expect(lines(restore.stdout)).toEqual([
      `started restoreDatabase ${id}`,
      expect.stringMatching(
        new RegExp(`^ {2}would: restore main/app from backup ${good}; the live database is kept as app_pre_restore_`),
      ),
      `  it waits for approval: pgwarden approve ${id} --approver NAME --reason TEXT   (or: pgwarden reject ...)`,
    ]);
    const running = await pgwarden(['status', id]);
    expect(running.exitCode).toBe(0);
    expect(running.stdout).toContain(`  approve   pgwarden approve ${id}`);

    const reject = await pgwarden(['reject', id, '--approver', 'bob', '--reason', 'wrong backup']);
    expect(reject.exitCode, String(reject.stderr)).toBe(0);
    await env.client.workflow.getHandle(id).result();

    const status = await pgwarden(['status', id]);
    expect(status.exitCode, String(status.stderr)).toBe(3);
    expect(status.stdout).toMatch(
      /^ {2}outcome {3}rejected by bob at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d: wrong backup; nothing was done$/m,
    );
    expect(status.stdout).not.toMatch(/approve |would|waiting/);
    const json = await pgwarden(['status', id, '--json']);
    expect(json.exitCode).toBe(3);
    expect(JSON.parse(String(json.stdout))).toMatchObject({
      status: 'completed',
      outcome: 'rejected',
      decision: { approved: false, approver: 'bob', reason: 'wrong backup' },
    });
  });

  it('a restore nobody answers: status says the approval timed out, exit 3; restore --wait exits 3 too', async () => {
    const id = `pgwarden/main/app/restore/${good}`;
    const restore = await pgwarden([
      'restore',
      '--cluster',
      'main',
      '--database',
      'app',
      '--backup-id',
      good,
      '--approval-timeout',
      '2 seconds',
      '--wait',
    ]);
    expect(restore.exitCode, String(restore.stderr)).toBe(3);
    expect(lines(restore.stdout).at(-1)).toBe('not restored: timed-out');
    const status = await pgwarden(['status', id]);
    expect(status.exitCode, String(status.stderr)).toBe(3);
    expect(status.stdout).toContain(
      '  outcome   timed out waiting for approval (nobody approved or rejected in time); nothing was done',
    );
    expect(
      await cluster.query<{ n: string }>(`SELECT count(*) AS n FROM pg_database WHERE datname LIKE 'app\\_%'`),
    ).toEqual([{ n: '0' }]);
  });
});

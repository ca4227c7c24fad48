// fullBackup end to end: real PostgreSQL 15, the real Temporal dev server, real gpg and pg_restore.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Config } from '../../src/config/index.js';
import { parseLogicalManifest } from '../../src/lib/manifest.js';
import { clusterKey, databaseKey, kindKey, memoOf, searchAttributesOf } from '../../src/lib/visibility.js';
import type { FullBackupInput, FullBackupResult } from '../../src/workflows/fullBackup.js';
import { testConfig, testSecrets } from '../helpers/config.js';
import { createSampleDatabase } from '../helpers/data.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { startCluster, type TestCluster } from '../helpers/postgres.js';
import { decryptArtifact, restoreWithStockTools, rowCounts } from '../helpers/restore.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';
import { freePort } from '../helpers/ports.js';

let cluster: TestCluster;
let key: TestKey;
let env: TestWorkflowEnvironment;
let repository: string;
let configDir: string;
let config: Config;
let worker: RunningWorker;
const queue = uniqueQueue('full-backup');

beforeAll(async () => {
  [cluster, key, env] = await Promise.all([startCluster(), createTestKey(), testEnvironment()]);
  repository = await mkdtemp(join(tmpdir(), 'pgwarden-repo-'));
  configDir = await mkdtemp(join(tmpdir(), 'pgwarden-cli-'));
  await Promise.all([createSampleDatabase(cluster, 'app'), createSampleDatabase(cluster, 'crm', 0.01)]);
  const down = await freePort(); // nothing listens here
  config = testConfig({
    cluster,
    repository,
    taskQueue: queue,
    key,
    extra: {
      clusters: {
        main: { host: cluster.host, port: cluster.port, user: 'postgres', passwordEnv: 'PGWARDEN_TEST_PASSWORD' },
        down: { host: '127.0.0.1', port: down, user: 'postgres', passwordEnv: 'PGWARDEN_TEST_PASSWORD' },
      },
    },
  });
  worker = await startPgwardenWorker(env, config, testSecrets(cluster, key));
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await Promise.all([
    cluster?.stop(),
    key?.remove(),
    repository && rm(repository, { recursive: true, force: true }),
    configDir && rm(configDir, { recursive: true, force: true }),
  ]);
});

async function runBackup(
  input: FullBackupInput,
  workflowId = `${queue}/${input.cluster}/${input.database}/${Math.random()}`,
  labelled = false,
) {
  const labels = { cluster: input.cluster, database: input.database, kind: 'full' } as const;
  const handle = await env.client.workflow.start('fullBackup', {
    taskQueue: queue,
    workflowId,
    args: [input],
    ...(labelled ? { memo: memoOf(labels), typedSearchAttributes: searchAttributesOf(labels) } : {}),
  });
  return { handle, result: handle.result() as Promise<FullBackupResult> };
}

describe('fullBackup', () => {
  it('backs up a database: gpg decrypts it, pg_restore restores it, row counts match the manifest', async () => {
    const { handle, result } = await runBackup({ cluster: 'main', database: 'app', backupId: '20261122T020000Z' });
    const { backups } = await result;
    expect(backups).toHaveLength(1);
    const backup = backups[0]!;
    expect(backup).toMatchObject({
      cluster: 'main',
      database: 'app',
      backupId: '20261122T020000Z',
      encrypted: true,
      reused: false,
    });
    expect(await handle.query('progress')).toMatchObject({ step: 'done' });

    const dir = join(repository, 'main/logical/app/20261122T020000Z');
    expect((await readdir(dir)).sort()).toEqual(['dump.pgdump.zst.gpg', 'globals.sql.zst.gpg', 'manifest.json']);
    const manifest = parseLogicalManifest(await readFile(join(dir, 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({
      kind: 'logical',
      cluster: 'main',
      database: 'app',
      compression: { algorithm: 'zstd' },
    });
    expect(manifest.serverVersion).toMatch(/^15\./);
    expect(manifest.encryption?.recipients).toEqual([key.fingerprint]);
    expect(manifest.tocEntries).toBeGreaterThan(10);
    const names = manifest.tables.map((t) => `${t.schema}.${t.name}`);
    expect(names).toEqual([
      'archive.Old Events',
      'public.documents',
      'public.empty_table',
      'public.orders',
      'public.users',
    ]);
    expect(manifest.tables.find((t) => t.name === 'users')?.rows).toBe(200_000);

    // The stored bytes are what the manifest says they are.
    const dumpFile = join(dir, 'dump.pgdump.zst.gpg');
    const stored = await readFile(dumpFile);
    const { createHash } = await import('node:crypto');
    expect(createHash('sha256').update(stored).digest('hex')).toBe(manifest.sha256);
    expect(stored.length).toBe(manifest.artifacts[0]!.bytes);
    // The large values really are in it: 40 x 256 KB of random hex text compresses to no less than ~5 MB.
    expect(manifest.artifacts[0]!.bytes).toBeGreaterThan(5_000_000);

    await restoreWithStockTools(cluster, key, dir, manifest, 'app_restored');
    expect(await rowCounts(cluster, 'app_restored', manifest.tables)).toEqual(manifest.tables);

    const globals = (await decryptArtifact(key, join(dir, 'globals.sql.zst.gpg'))).toString();
    expect(globals).toContain('CREATE ROLE app_reader');
    expect(manifest.globals.rolePasswords).toBe(true);
  });

  it('never makes two backups of the same backupId', async () => {
    const first = await (await runBackup({ cluster: 'main', database: 'crm', backupId: '20261122T030000Z' })).result;
    const second = await (await runBackup({ cluster: 'main', database: 'crm', backupId: '20261122T030000Z' })).result;
    expect(first.backups[0]!.reused).toBe(false);
    expect(second.backups[0]!.reused).toBe(true);
    expect(second.backups[0]!.sha256).toBe(first.backups[0]!.sha256);
    expect(await readdir(join(repository, 'main/logical/crm'))).toEqual(['20261122T030000Z']);
  });

  it('backs up every database of the cluster with "*", one child workflow each', async () => {
    const { result } = await runBackup(
      { cluster: 'main', database: '*', backupId: '20261122T040000Z' },
      undefined,
      true,
    );
    const { backups } = await result;
    // Each child carries its own database's labels, so filters on "app" find it.
    const child = await env.client.workflow.getHandle('pgwarden/main/app/full/20261122T040000Z').describe();
    expect(child.memo).toEqual({ cluster: 'main', database: 'app', kind: 'full' });
    expect([
      child.typedSearchAttributes.get(clusterKey),
      child.typedSearchAttributes.get(databaseKey),
      child.typedSearchAttributes.get(kindKey),
    ]).toEqual(['main', 'app', 'full']);
    const databases = await cluster.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1',
    );
    expect(backups.map((b) => b.database).sort()).toEqual(databases.map((d) => d.datname));
    expect(databases.map((d) => d.datname)).toEqual(expect.arrayContaining(['app', 'crm', 'postgres']));
    for (const b of backups)
      expect(existsSync(join(repository, 'main/logical', b.database, '20261122T040000Z/manifest.json'))).toBe(true);
  });

  it('"*": a database that fails does not leave the ones after it unbacked-up; the run fails naming it', async () => {
    // A name the repository refuses as a path component; listed between app and crm.
    await cluster.query('CREATE DATABASE "bad name"');
    try {
      const listed = (
        await cluster.query<{ datname: string }>(
          'SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname',
        )
      ).map((d) => d.datname);
      const others = listed.filter((d) => d !== 'bad name');
      // Some are listed after it (the ones a stop at the first failure left unbacked-up).
      expect(listed.indexOf('bad name')).toBeLessThan(listed.indexOf('crm'));
      const { result } = await runBackup({ cluster: 'main', database: '*', backupId: '20261122T050000Z' });
      const err = await result.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect([cause.type, cause.nonRetryable]).toEqual(['BackupFailed', true]);
      expect(cause.message).toBe(
        `1 of ${listed.length} databases failed to back up (20261122T050000Z): bad name: database name "bad name" cannot be used as a repository path component`,
      );
      const details = cause.details?.[0] as {
        failed: { database: string }[];
        backedUp: { database: string; backupId: string }[];
      };
      expect(details.failed.map((f) => f.database)).toEqual(['bad name']);
      expect(details.backedUp.map((b) => b.database)).toEqual(others);
      // Every other database, those listed after the failed one too, is backed up and committed.
      for (const database of others) {
        const manifest = parseLogicalManifest(
          await readFile(join(repository, 'main/logical', database, '20261122T050000Z/manifest.json'), 'utf8'),
        );
        expect(manifest.database).toBe(database);
      }
    } finally {
      await cluster.query('DROP DATABASE "bad name"');
    }
  });

  it('keeps secrets out of workflow history', async () => {
    const { handle, result } = await runBackup({ cluster: 'main', database: 'crm' });
    await result;
    const history = await handle.fetchHistory();
    const text = historyText(history);
    expect(text).toContain('crm'); // the history was decoded: names are there
    expect(text).not.toContain(cluster.password);
    expect(text).not.toContain(key.passphrase);
  });

  it('applies the retention policy after each backup', async () => {
    const taskQueue = uniqueQueue('full-backup-retention');
    const retention = { daily: 2, weekly: 0, monthly: 0, yearly: 0, minimum: 1 };
    const own = join(configDir, 'retention-repo'); // a repository of its own: other tests back up "postgres" too
    const alt = await startPgwardenWorker(
      env,
      {
        ...config,
        retention: { ...config.retention, ...retention },
        repositories: { local: { type: 'local', path: own } },
        temporal: { ...config.temporal, taskQueue },
        worker: { ...config.worker, host: taskQueue },
      },
      testSecrets(cluster, key),
    );
    try {
      let last: FullBackupResult | undefined;
      for (const day of ['01', '02', '03', '04']) {
        last = (await env.client.workflow.execute('fullBackup', {
          taskQueue,
          workflowId: `${taskQueue}/${day}`,
          args: [{ cluster: 'main', database: 'postgres', backupId: `202611${day}T010000Z` }],
        })) as FullBackupResult;
      }
      expect(last!.retention!.keep).toEqual([
        { backupId: '20261104T010000Z', reasons: ['minimum', 'daily'] },
        { backupId: '20261103T010000Z', reasons: ['daily'] },
      ]);
      expect(last!.retention!.delete.map((d) => d.backupId)).toEqual(['20261102T010000Z']);
      expect((await readdir(join(own, 'main/logical/postgres'))).sort()).toEqual([
        '20261103T010000Z',
        '20261104T010000Z',
      ]);
    } finally {
      await alt.stop();
    }
  });

  describe('from the command line', () => {
    const pgwarden = join(import.meta.dirname, '../../bin/pgwarden');
    const cliEnv = () => ({
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      PGWARDEN_CONFIG: join(configDir, 'pgwarden.config.json'),
    });
    beforeAll(async () => {
      await writeFile(cliEnv().PGWARDEN_CONFIG, JSON.stringify(config));
    });

    it('pgwarden backup --wait prints the workflow id and the result', async () => {
      const { stdout, exitCode } = await execa(
        pgwarden,
        ['backup', '--cluster', 'main', '--database', 'crm', '--backup-id', '20261122T050000Z', '--wait'],
        { env: cliEnv() },
      );
      expect(exitCode).toBe(0);
      expect(stdout).toContain('started fullBackup pgwarden/main/crm/full/20261122T050000Z');
      expect(stdout).toMatch(/main\/crm 20261122T050000Z: .* stored, 5 tables, \d+ rows/);
      expect(existsSync(join(repository, 'main/logical/crm/20261122T050000Z/manifest.json'))).toBe(true);
    });

    it('a user mistake is one line on stderr and exit code 1', async () => {
      const r = await execa(pgwarden, ['backup', '--cluster', 'nope', '--database', 'app'], {
        env: cliEnv(),
        reject: false,
      });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toBe('pgwarden: unknown cluster "nope" (configured: main, down)');
      const bad = await execa(
        pgwarden,
        ['backup', '--cluster', 'main', '--database', 'app', '--backup-id', 'yesterday'],
        { env: cliEnv(), reject: false },
      );
      expect(bad.exitCode).toBe(1);
      expect(bad.stderr).toBe('pgwarden: --backup-id "yesterday" is not of the form 20261122T020000Z[-suffix]');
    });

    it('a worker refuses an invalid config at start, naming the bad field', async () => {
      const bad = join(configDir, 'bad.json');
      await writeFile(
        bad,
        JSON.stringify({ ...config, clusters: { main: { ...config.clusters.main, port: 'five' } } }),
      );
      const r = await execa(pgwarden, ['worker', '--config', bad], { env: cliEnv(), reject: false });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/^pgwarden: invalid config .*bad\.json: clusters\.main\.port: /);
    });

    it("the README's temporal workflow start command works as written", async () => {
      const temporal = join(import.meta.dirname, '../../.tools/bin/temporal');
      const workflowId = `${queue}/temporal-cli`;
      // As in the README, with this test's address, queue and a known workflow id added.
      await execa(temporal, [
        'workflow',
        'start',
        '--type',
        'fullBackup',
        '--task-queue',
        queue,
        '--input',
        '{"cluster":"main","database":"crm"}',
        '--address',
        inject('temporalAddress'),
        '--workflow-id',
        workflowId,
      ]);
      const result = (await env.client.workflow.getHandle(workflowId).result()) as FullBackupResult;
      expect(result.backups[0]).toMatchObject({ cluster: 'main', database: 'crm', reused: false });
      const { stdout } = await execa(temporal, [
        'workflow',
        'query',
        '--workflow-id',
        workflowId,
        '--type',
        'progress',
        '--address',
        inject('temporalAddress'),
      ]);
      expect(stdout).toContain('done');
    });
  });

  describe('refuses bad input with a clear non-retryable error, writing nothing', () => {
    const cases: [string, FullBackupInput, string, RegExp, (() => Config)?][] = [
      ['unknown cluster', { cluster: 'nope', database: 'app' }, 'UnknownCluster', /unknown cluster "nope"/],
      ['unknown database', { cluster: 'main', database: 'nosuchdb' }, 'UnknownDatabase', /no database "nosuchdb"/],
      [
        'unreachable server',
        { cluster: 'down', database: 'app' },
        'ServerUnreachable',
        /cluster "down" .* unreachable/,
      ],
      [
        'unreadable key',
        { cluster: 'main', database: 'app' },
        'KeyUnreadable',
        /encryption key .*missing\.asc is unreadable/,
        () => ({ ...config, encryption: { recipients: [join(repository, 'missing.asc')] } }),
      ],
    ];
    for (const [name, input, type, message, altConfig] of cases) {
      it(name, async () => {
        let taskQueue = queue;
        let alt: RunningWorker | undefined;
        if (altConfig) {
          taskQueue = uniqueQueue('full-backup-alt');
          const cfg = altConfig();
          alt = await startPgwardenWorker(
            env,
            { ...cfg, temporal: { ...cfg.temporal, taskQueue }, worker: { ...cfg.worker, host: taskQueue } },
            testSecrets(cluster, key),
          );
        }
        try {
          const before = await listTree(repository);
          const handle = await env.client.workflow.start('fullBackup', {
            taskQueue,
            workflowId: `${taskQueue}/bad/${name}`,
            args: [input],
          });
          const err = await handle.result().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(WorkflowFailedError);
          const activityFailure = (err as WorkflowFailedError).cause;
          expect(activityFailure).toBeInstanceOf(ActivityFailure);
          const cause = (activityFailure as ActivityFailure).cause as ApplicationFailure;
          expect(cause).toBeInstanceOf(ApplicationFailure);
          expect(cause.type).toBe(type);
          expect(cause.nonRetryable).toBe(true);
          expect(cause.message).toMatch(message);
          // Failed at the first attempt: nothing was retried.
          const history = await handle.fetchHistory();
          const started = history.events?.filter((e) => e.activityTaskStartedEventAttributes) ?? [];
          expect(started.map((e) => e.activityTaskStartedEventAttributes!.attempt)).toEqual([1]);
          expect(await listTree(repository)).toEqual(before);
        } finally {
          await alt?.stop();
        }
      });
    }
  });
});

async function listTree(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).map(String).sort();
}

/** Every string and every payload's bytes in a history, decoded, as one haystack. */
function historyText(history: unknown): string {
  const parts: string[] = [];
  const walk = (node: unknown) => {
    if (node === null || node === undefined) return;
    if (typeof node === 'string') parts.push(node);
    else if (node instanceof Uint8Array) parts.push(Buffer.from(node).toString('utf8'));
    else if (typeof node === 'object') for (const value of Object.values(node)) walk(value);
  };
  walk(history);
  return parts.join('\n');
}

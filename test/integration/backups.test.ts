// `pgwarden backups` against a real PostgreSQL 15 cluster archiving its WAL, pgwarden's real
// worker and the Temporal dev server: after a verified logical backup and a base backup it lists
// both with the sizes, times, verification and offsite confirmation the repository records, and the
// WAL archive's extent; read here when the repository is on this host, on a worker otherwise (or
// with --via-worker), with the same answer.
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import type { RepositoryInfo } from '../../src/lib/repositoryInfo.js';
import type { OffsiteConfirmations } from '../../src/lib/offsiteConfirmed.js';
import type { BaseBackupWorkflowResult } from '../../src/workflows/baseBackup.js';
import type { FullBackupResult } from '../../src/workflows/fullBackup.js';
import { PGWARDEN, startArchivingCluster, switchAndArchive, type ArchivingSetup } from '../helpers/archiving.js';
import { testSecrets } from '../helpers/config.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

const queue = uniqueQueue('backups');
let setup: ArchivingSetup;
let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let full: FullBackupResult;
let base: BaseBackupWorkflowResult;
let walSegments: string[];
const confirmedAt = '2026-11-22T05:00:00.000Z';

async function backups(args: string[], configFile = setup.configFile) {
  const r = await execa(PGWARDEN, ['--config', configFile, 'backups', '--cluster', 'main', ...args], {
    env: { PGWARDEN_FROM_SOURCE: '1', TEMPORAL_ADDRESS: inject('temporalAddress'), TZ: 'UTC' },
    stdin: 'ignore',
    reject: false,
  });
  expect(r.exitCode, String(r.stderr)).toBe(0);
  expect(r.stderr).toBe('');
  return String(r.stdout);
}

beforeAll(async () => {
  env = await testEnvironment();
  // An offsite repository that is never contacted: its confirmations come from the record the check keeps.
  setup = await startArchivingCluster({
    taskQueue: queue,
    extra: {
      repositories: {
        far: { type: 's3', bucket: 'pgwarden-far', endpoint: 'http://127.0.0.1:9', forcePathStyle: true },
      },
    },
  });
  await setup.cluster.query('CREATE DATABASE app');
  await setup.cluster.query(
    'CREATE TABLE items (id serial PRIMARY KEY, note text); INSERT INTO items (note) SELECT md5(g::text) FROM generate_series(1, 2000) g',
    'app',
  );
  worker = await startPgwardenWorker(env, setup.config, testSecrets(setup.cluster));
  const run = <T>(type: string, input: object) =>
    env.client.workflow.execute(type, {
      taskQueue: queue,
      workflowId: `${queue}/${type}`,
      args: [input],
    }) as Promise<T>;
  full = await run<FullBackupResult>('fullBackup', { cluster: 'main', database: 'app', verify: true });
  base = await run<BaseBackupWorkflowResult>('baseBackup', { cluster: 'main' });
  await switchAndArchive(setup.cluster);
  walSegments = (await readdir(join(setup.repository, 'main/wal')))
    .filter((f) => /^[0-9A-F]{24}\.json$/.test(f))
    .map((f) => f.slice(0, 24))
    .sort();
  // What a passing offsite check records: the logical backup and the first WAL segment confirmed on "far".
  const record: OffsiteConfirmations = {
    repository: 'far',
    checkedAt: confirmedAt,
    confirmed: {
      [`main/logical/app/${full.backups[0]!.backupId}`]: confirmedAt,
      [`main/wal/${walSegments[0]}`]: confirmedAt,
    },
  };
  await mkdir(join(setup.repository, 'main/offsite'), { recursive: true });
  await writeFile(join(setup.repository, 'main/offsite/far.json'), JSON.stringify(record));
}, 240_000);

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await setup?.remove();
});

it('lists the logical and the base backup with size, finish time, verification and offsite copies, and the WAL archive', async () => {
  const logical = full.backups[0]!;
  const lines = (await backups([])).split('\n');
  expect(lines[0]).toBe(`repository "local" (${setup.repository}), cluster main`);
  expect(lines[1]).toMatch(/^BACKUP ID +KIND +DATABASE +SIZE +FINISHED +VERIFIED +OFFSITE$/);
  const row = (id: string) => lines.find((l) => l.startsWith(id)) ?? `no row ${id} in:\n${lines.join('\n')}`;
  expect(row(base.backupId)).toMatch(
    new RegExp(
      `^${base.backupId} +base +- +[\\d.]+ [KM]iB +\\w{3} \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC +never +none yet$`,
    ),
  );
  expect(row(logical.backupId)).toMatch(
    new RegExp(
      `^${logical.backupId} +logical +app +[\\d.]+ (B|KiB|MiB) +\\w{3} \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC +ok \\w{3} \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC +far$`,
    ),
  );
  expect(lines.at(-1)).toMatch(
    new RegExp(
      `^WAL archive: \\d+ files, [\\d.]+ MiB, segments ${walSegments[0]} \\.\\. ${walSegments.at(-1)}; offsite: far 1 confirmed$`,
    ),
  );
});

it('--json: every field a script needs, the same read here and on a worker', async () => {
  const info = JSON.parse(await backups(['--json'])) as RepositoryInfo;
  expect(info).toMatchObject({
    cluster: 'main',
    repository: 'local',
    path: setup.repository,
    readOn: 'here',
    offsiteRepositories: ['far'],
  });
  expect(info.backups).toHaveLength(2);
  const [b, l] = info.backups;
  expect(b).toMatchObject({
    kind: 'base',
    backupId: base.backupId,
    bytes: base.bytes,
    encrypted: false,
    offsite: [],
    timeline: base.timeline,
    startLsn: base.startLsn,
    stopLsn: base.stopLsn,
  });
  expect(b!.verified).toBeUndefined();
  expect(l).toMatchObject({
    kind: 'logical',
    database: 'app',
    backupId: full.backups[0]!.backupId,
    bytes: full.backups[0]!.bytes,
    offsite: [{ repository: 'far', confirmedAt }],
  });
  expect(l!.verified).toMatchObject({ ok: true });
  expect(Date.parse(l!.verified!.at)).toBeGreaterThanOrEqual(Date.parse(l!.finishedAt));
  expect(info.wal).toMatchObject({
    firstSegment: walSegments[0],
    lastSegment: walSegments.at(-1),
    offsite: [{ repository: 'far', files: 1 }],
  });
  expect(info.wal.files).toBeGreaterThanOrEqual(walSegments.length);
  expect(info.wal.bytes).toBeGreaterThan(0);

  // --via-worker: the repositoryInfo workflow's activity reads the same repository.
  const remote = JSON.parse(await backups(['--json', '--via-worker'])) as RepositoryInfo;
  expect(remote.readOn).not.toBe('here');
  expect({ ...remote, readOn: 'here' }).toEqual(info);

  // A CLI host where the repository's directory is not: read on the worker without being asked to.
  const elsewhere = join(setup.dir, 'cli-elsewhere.json');
  const cfg = JSON.parse(await (await import('node:fs/promises')).readFile(setup.configFile, 'utf8')) as {
    repositories: { local: { path: string } };
  };
  cfg.repositories.local.path = join(setup.dir, 'not-here');
  await writeFile(elsewhere, JSON.stringify(cfg));
  const fromWorker = JSON.parse(await backups(['--json'], elsewhere)) as RepositoryInfo;
  expect(fromWorker.path).toBe(setup.repository);
  expect(fromWorker.backups).toEqual(info.backups);
  const text = await backups([], elsewhere);
  expect(text.split('\n')[0]).toBe(`repository "local" (${setup.repository} on ${remote.readOn}), cluster main`);
});

it('--database narrows the logical backups; base backups and WAL stay', async () => {
  const info = JSON.parse(await backups(['--json', '--database', 'other'])) as RepositoryInfo;
  expect(info.backups.map((b) => b.kind)).toEqual(['base']);
  expect(info.wal.firstSegment).toBe(walSegments[0]);
});

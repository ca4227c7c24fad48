// Backups are private: after every kind of write pgwarden makes in a repository (a "*" logical
// backup and its verification, a base backup, WAL through the real archive_command as the postgres
// user, health state, fetches from offsite into a wiped repository), no file is readable and no
// directory is open to group or others, with a loose umask (022) in the worker and in the
// archive_command. Run as root (the worker's usual user), everything belongs to the repository
// directory's owner, PostgreSQL's user, who can still read what it needs (wal-get, base backups).
import { chmod, lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PointInTimeRecoveryResult } from '../../src/workflows/pointInTimeRecovery.js';
import type { VerifyBackupResult } from '../../src/workflows/verifyBackup.js';
import { startArchivingCluster, switchAndArchive, type ArchivingSetup } from '../helpers/archiving.js';
import { testSecrets } from '../helpers/config.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { startS3Server, type S3Server } from '../helpers/s3.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

const S3_KEY_ENV = 'PGWARDEN_TEST_S3_KEY';
const S3_SECRET_ENV = 'PGWARDEN_TEST_S3_SECRET';
const isRoot = process.getuid?.() === 0;

let key: TestKey;
let env: TestWorkflowEnvironment;
let s3: S3Server;
let setup: ArchivingSetup;
let worker: RunningWorker;
let umask: number;
const queue = uniqueQueue('modes');

beforeAll(async () => {
  // The loose umask most hosts have: pgwarden must not depend on a strict one.
  umask = process.umask(0o022);
  [key, env, s3] = await Promise.all([createTestKey(), testEnvironment(), startS3Server()]);
  await s3.bucket('offsite');
  setup = await startArchivingCluster({
    taskQueue: queue,
    key,
    extra: {
      repositories: {
        s3: {
          type: 's3',
          endpoint: s3.endpoint,
          forcePathStyle: true,
          bucket: 'offsite',
          prefix: 'pgwarden',
          accessKeyIdEnv: S3_KEY_ENV,
          secretAccessKeyEnv: S3_SECRET_ENV,
        },
      },
    },
  });
  setup.config.clusters.main!.offsite = ['s3'];
  // The operator's part (README): the repository, its cluster directory and the WAL directory
  // belong to PostgreSQL's user, mode 0700.
  for (const d of ['', 'main', 'main/wal']) await chmod(join(setup.repository, d), 0o700);
  // PostgreSQL runs archive_command with its own umask (077); a wrapper that loosens it must not matter.
  const command = (await setup.cluster.query<{ archive_command: string }>('SHOW archive_command'))[0]!.archive_command;
  await setup.cluster.query(`ALTER SYSTEM SET archive_command = '${`umask 022; ${command}`.replace(/'/g, "''")}'`);
  await setup.cluster.query('SELECT pg_reload_conf()');
  await setup.cluster.query('CREATE DATABASE app');
  await setup.cluster.query(
    `CREATE TABLE items (id serial PRIMARY KEY, note text); INSERT INTO items (note) SELECT md5(g::text) FROM generate_series(1, 2000) g`,
    'app',
  );
  worker = await startPgwardenWorker(env, setup.config, {
    ...testSecrets(setup.cluster, key),
    [S3_KEY_ENV]: s3.accessKey,
    [S3_SECRET_ENV]: s3.secretKey,
  });
}, 180_000);

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await Promise.all([setup?.remove(), s3?.destroy(), key?.remove()]);
  if (umask !== undefined) process.umask(umask);
});

interface Entry {
  path: string;
  dir: boolean;
  mode: number;
  uid: number;
}

async function walk(root: string): Promise<Entry[]> {
  const out: Entry[] = [];
  const visit = async (path: string) => {
    const st = await lstat(path);
    out.push({ path: path.slice(root.length) || '/', dir: st.isDirectory(), mode: st.mode & 0o777, uid: st.uid });
    if (st.isDirectory()) for (const name of await readdir(path)) await visit(join(path, name));
  };
  await visit(root);
  return out;
}

const run = (type: string, id: string, input: Record<string, unknown>) =>
  env.client.workflow.execute(type, {
    taskQueue: queue,
    workflowId: `${queue}/${id}`,
    args: [{ cluster: 'main', ...input }],
  });

async function expectPrivate(kinds: RegExp[]): Promise<Entry[]> {
  const entries = await walk(setup.repository);
  const postgresUid = isRoot ? Number((await execa('id', ['-u', 'postgres'])).stdout) : process.getuid!();
  expect(entries.filter((e) => (e.mode & 0o077) !== 0).map((e) => `${e.path} ${e.mode.toString(8)}`)).toEqual([]);
  expect(entries.filter((e) => e.uid !== postgresUid).map((e) => `${e.path} uid ${e.uid}`)).toEqual([]);
  for (const kind of kinds)
    expect(
      entries.some((e) => !e.dir && kind.test(e.path)),
      `a file like ${kind}`,
    ).toBe(true);
  return entries;
}

/** As PostgreSQL's user, the way restore_command and a host worker running as postgres read. */
const asPostgres = (cmd: string, args: string[]) =>
  execa('runuser', ['-u', 'postgres', '--', cmd, ...args], { reject: false });

describe('repository files are private', () => {
  it('after a "*" backup with verification, a base backup, archived WAL and a health check: files 0600, directories 0700, owned by the repository owner', async () => {
    await run('fullBackup', 'full', { database: '*', verify: true });
    await run('baseBackup', 'base', {});
    const segment = await switchAndArchive(setup.cluster);
    await run('healthCheck', 'health', {});
    const entries = await expectPrivate([
      /^\/main\/logical\/app\/\w+\/dump\.pgdump\.zst\.gpg$/,
      /^\/main\/logical\/postgres\/\w+\/globals\.sql\.zst\.gpg$/,
      /^\/main\/logical\/app\/\w+\/manifest\.json$/,
      /^\/main\/base\/\w+\/base\.tar\.zst\.gpg$/,
      /^\/main\/base\/\w+\/backup_manifest$/,
      new RegExp(`^/main/wal/${segment}\\.zst\\.gpg$`),
      new RegExp(`^/main/wal/${segment}\\.json$`),
    ]);
    expect(entries.filter((e) => e.dir).map((e) => e.mode)).toEqual(entries.filter((e) => e.dir).map(() => 0o700));
    if (!isRoot) return;
    // PostgreSQL's user still reads what it needs: the archive (wal-get, as restore_command) and
    // the backups (a host worker running as postgres stages them).
    for (const file of [
      `main/wal/${segment}.zst.gpg`,
      `main/wal/${segment}.json`,
      entries.find((e) => e.path.endsWith('base.tar.zst.gpg'))!.path,
    ]) {
      const read = await asPostgres('head', ['-c', '1', join(setup.repository, file)]);
      expect(read.exitCode, `${file}: ${read.stderr}`).toBe(0);
    }
  }, 240_000);

  it('what is fetched back from offsite into a wiped repository is private too', async () => {
    await run('offsiteSync', 'offsite', {});
    await rm(join(setup.repository, 'main/logical'), { recursive: true, force: true });
    await rm(join(setup.repository, 'main/base'), { recursive: true, force: true });
    for (const f of await readdir(join(setup.repository, 'main/wal'))) await rm(join(setup.repository, 'main/wal', f));
    const verified = (await run('verifyBackup', 'verify-fetched', { database: 'app' })) as VerifyBackupResult;
    expect(verified).toMatchObject({ ok: true, rows: 2000 });
    const pitr = (await run('pointInTimeRecovery', 'pitr', {
      target: { latest: true },
      mode: 'rehearsal',
    })) as PointInTimeRecoveryResult;
    expect(pitr.outcome).toBe('rehearsed');
    await expectPrivate([
      /^\/main\/logical\/app\/\w+\/dump\.pgdump\.zst\.gpg$/,
      /^\/main\/base\/\w+\/base\.tar\.zst\.gpg$/,
      /^\/main\/wal\/[0-9A-F]{24}\.zst\.gpg$/,
    ]);
  }, 240_000);
});

// offsiteSync against a real S3 server (versitygw) and a real sshd with rsync, from a real
// PostgreSQL 15 cluster's repository (logical backup, base backup, archived WAL): the copies pass
// a check that reads every object back; a second run copies nothing; an object deleted or changed
// behind pgwarden's back is named; the S3 server dying mid-upload is survived; a wiped local
// repository deletes nothing offsite, and a verify and a rehearsal PITR then work from offsite alone.
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  S3Client,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import type { OffsiteSyncInput, OffsiteSyncResult } from '../../src/workflows/offsiteSync.js';
import type { PointInTimeRecoveryResult } from '../../src/workflows/pointInTimeRecovery.js';
import type { VerifyBackupResult } from '../../src/workflows/verifyBackup.js';
import { startArchivingCluster, switchAndArchive, type ArchivingSetup } from '../helpers/archiving.js';
import { testSecrets } from '../helpers/config.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { freePort } from '../helpers/ports.js';
import { startS3Server, type S3Server } from '../helpers/s3.js';
import { startSshd, type SshServer } from '../helpers/sshd.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

const S3_KEY_ENV = 'PGWARDEN_TEST_S3_KEY';
const S3_SECRET_ENV = 'PGWARDEN_TEST_S3_SECRET';
const S3_BAD_SECRET_ENV = 'PGWARDEN_TEST_S3_BAD_SECRET';
const BAD_SECRET = 'not-the-secret-0123456789';

let setup: ArchivingSetup;
let key: TestKey;
let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let s3: S3Server;
let sshd: SshServer;
let s3Client: S3Client;
const queue = uniqueQueue('offsite');
let runs = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  [key, env, s3, sshd] = await Promise.all([createTestKey(), testEnvironment(), startS3Server(), startSshd()]);
  await Promise.all([s3.bucket('offsite'), s3.bucket('slow')]);
  const unreachablePort = await freePort();
  const s3Base = {
    type: 's3' as const,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    accessKeyIdEnv: S3_KEY_ENV,
    secretAccessKeyEnv: S3_SECRET_ENV,
  };
  const rsyncBase = {
    type: 'rsync' as const,
    port: sshd.port,
    identityFile: sshd.identityFile,
    knownHostsFile: sshd.knownHostsFile,
  };
  setup = await startArchivingCluster({
    taskQueue: queue,
    key,
    extra: {
      repositories: {
        s3: { ...s3Base, bucket: 'offsite', prefix: 'pgwarden' },
        rsync: { ...rsyncBase, destination: `${sshd.user}@${sshd.host}:${sshd.remoteRoot}/pgwarden` },
        // Empty until the test of a broken repository beside a good one.
        fresh: { ...rsyncBase, destination: `${sshd.user}@${sshd.host}:${sshd.remoteRoot}/fresh` },
        // Only the fault tests name these.
        slow: { ...s3Base, bucket: 'slow', partSizeMiB: 5, maxRate: 3_000_000 },
        'no-bucket': { ...s3Base, bucket: 'no-such-bucket' },
        'bad-credentials': { ...s3Base, bucket: 'offsite', secretAccessKeyEnv: S3_BAD_SECRET_ENV },
        unreachable: {
          ...rsyncBase,
          port: unreachablePort,
          destination: `${sshd.user}@127.0.0.1:${sshd.remoteRoot}/x`,
        },
        'wrong-host-key': {
          ...rsyncBase,
          knownHostsFile: sshd.wrongKnownHostsFile,
          destination: `${sshd.user}@${sshd.host}:${sshd.remoteRoot}/x`,
        },
      },
    },
  });
  setup.config.clusters.main!.offsite = ['s3', 'rsync'];
  s3Client = new S3Client({
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
  });
  await setup.cluster.query('CREATE DATABASE app');
  await setup.cluster.query(
    `CREATE TABLE items (id serial PRIMARY KEY, note text); INSERT INTO items (note) SELECT md5(g::text) FROM generate_series(1, 5000) g`,
    'app',
  );
  worker = await startPgwardenWorker(env, setup.config, {
    ...testSecrets(setup.cluster, key),
    [S3_KEY_ENV]: s3.accessKey,
    [S3_SECRET_ENV]: s3.secretKey,
    [S3_BAD_SECRET_ENV]: BAD_SECRET,
  });
  await env.client.workflow.execute('fullBackup', {
    taskQueue: queue,
    workflowId: `${queue}/full-app`,
    args: [{ cluster: 'main', database: 'app' }],
  });
  await env.client.workflow.execute('baseBackup', {
    taskQueue: queue,
    workflowId: `${queue}/base`,
    args: [{ cluster: 'main' }],
  });
  await setup.cluster.query(`INSERT INTO items (note) VALUES ('after the base backup')`, 'app');
  await switchAndArchive(setup.cluster);
}, 180_000);

afterAll(async () => {
  s3Client?.destroy();
  await worker?.stop();
  await env?.teardown();
  await Promise.all([setup?.remove(), key?.remove(), s3?.destroy(), sshd?.stop()]);
});

function startSync(input: Omit<OffsiteSyncInput, 'cluster'> = {}): Promise<WorkflowHandle> {
  return env.client.workflow.start('offsiteSync', {
    taskQueue: queue,
    workflowId: `${queue}/sync-${++runs}`,
    args: [{ cluster: 'main', ...input }],
  });
}
const sync = async (input: Omit<OffsiteSyncInput, 'cluster'> = {}) =>
  (await (await startSync(input)).result()) as OffsiteSyncResult;

async function failure(handle: WorkflowHandle): Promise<{ type?: string; message: string; retryState?: string }> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause = (err as WorkflowFailedError).cause as
    (Error & { type?: string; cause?: Error; retryState?: string }) | undefined;
  const retryState = cause?.retryState;
  while (cause?.cause) cause = cause.cause as typeof cause;
  return { type: cause?.type, message: cause?.message ?? '', retryState };
}

/** Every key under the cluster on the rsync destination (sidecars included). */
async function rsyncFiles(): Promise<string[]> {
  const root = join(sshd.remoteRoot, 'pgwarden');
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
    .sort();
}

async function s3Keys(bucket: string): Promise<string[]> {
  const out = await s3Client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

const dumpKey = async () =>
  (await s3Keys('offsite')).find((k) => k.includes('/logical/app/') && k.includes('dump'))!.replace(/^pgwarden\//, '');

describe('offsiteSync', () => {
  it('copies logical, base and WAL to S3 and over rsync; the full check passes; a second run copies nothing', async () => {
    const first = await sync();
    expect(first.repositories.map((r) => r.repository)).toEqual(['s3', 'rsync']);
    for (const r of first.repositories) {
      expect(r.error).toBeUndefined();
      expect(r.sync!.uploaded).toBeGreaterThan(6);
      expect(r.check!.problems).toEqual([]);
      for (const kind of ['logical', 'base', 'wal'] as const) {
        expect(r.check!.counts[kind].local).toBeGreaterThan(0);
        expect(r.check!.counts[kind].remote).toBe(r.check!.counts[kind].local);
      }
      // Every object was read back and hashed (on the remote host for rsync).
      expect(r.check!.contentChecked).toBe(
        r.check!.counts.logical.remote + r.check!.counts.base.remote + r.check!.counts.wal.remote,
      );
    }
    expect((await rsyncFiles()).some((f) => f.endsWith('.sha256'))).toBe(true);
    const second = await sync({ check: 'quick' });
    for (const r of second.repositories) expect(r.sync).toMatchObject({ uploaded: 0, uploadedBytes: 0 });
  }, 120_000);

  it('names an object deleted behind its back; the next sync copies it again and the check passes', async () => {
    const key = await dumpKey();
    await rm(s3.objectPath('offsite', `pgwarden/${key}`));
    await rm(join(sshd.remoteRoot, 'pgwarden', key));
    const check = await failure(await startSync({ checkOnly: true }));
    expect(check.type).toBe('OffsiteSyncFailed');
    expect(check.message).toContain(`s3: offsite repository "s3" failed its check`);
    expect(check.message).toContain(`missing ${key}`);
    expect(check.message).toContain(`rsync: offsite repository "rsync" failed its check`);
    const again = await sync();
    for (const r of again.repositories) {
      expect(r.sync).toMatchObject({ uploaded: 1, uploadedKeys: [key] });
      expect(r.check!.problems).toEqual([]);
    }
  }, 120_000);

  it('names an object whose content changed behind its back (one flipped byte)', async () => {
    const key = await dumpKey();
    for (const file of [s3.objectPath('offsite', `pgwarden/${key}`), join(sshd.remoteRoot, 'pgwarden', key)]) {
      const bytes = await readFile(file);
      bytes[100] = bytes[100]! ^ 0xff;
      await writeFile(file, bytes);
    }
    const check = await failure(await startSync({ checkOnly: true }));
    expect(check.message).toMatch(
      new RegExp(`corrupt ${key.replace(/[.]/g, '\\.')}: content sha256 [0-9a-f]{64}, recorded [0-9a-f]{64}`),
    );
    expect(check.message.match(/corrupt /g)).toHaveLength(2); // both repositories
    // A sync never overwrites a remote object: the operator removes the bad copy, the next sync replaces it.
    await rm(s3.objectPath('offsite', `pgwarden/${key}`));
    await rm(join(sshd.remoteRoot, 'pgwarden', key));
    for (const r of (await sync()).repositories) expect(r.check!.problems).toEqual([]);
  }, 120_000);

  it('holds objects in S3 Intelligent-Tiering archive tiers to size and recorded sha256: InvalidObjectState never fails the daily check', async () => {
    const all = await s3Keys('offsite');
    const dump = `pgwarden/${await dumpKey()}`;
    const base = all.find((k) => k.includes('/base/') && k.includes('base.tar'))!;
    const refused = new Set([dump, base]);
    // versitygw has no Intelligent-Tiering: AWS's answers for it are laid over the real ones. Both
    // list as INTELLIGENT_TIERING; HEAD says the dump is in Deep Archive Access, while the base backup
    // moved to Archive Access after its HEAD (only GetObject's InvalidObjectState says so).
    const send = S3Client.prototype.send as unknown as (
      this: S3Client,
      command: unknown,
    ) => Promise<Record<string, unknown>>;
    const spy = vi.spyOn(S3Client.prototype, 'send').mockImplementation(async function (
      this: S3Client,
      command: { input: { Bucket?: string; Key?: string } },
    ) {
      const { Bucket, Key } = command.input;
      if (command instanceof GetObjectCommand && Bucket === 'offsite' && refused.has(Key!)) {
        throw Object.assign(new Error("The operation is not valid for the object's access tier"), {
          name: 'InvalidObjectState',
          Code: 'InvalidObjectState',
          $metadata: { httpStatusCode: 403 },
        });
      }
      const out = await send.call(this, command);
      if (command instanceof HeadObjectCommand && Key === dump)
        return { ...out, StorageClass: 'INTELLIGENT_TIERING', ArchiveStatus: 'DEEP_ARCHIVE_ACCESS' };
      if (command instanceof ListObjectsV2Command && Bucket === 'offsite') {
        return {
          ...out,
          Contents: (out.Contents as { Key: string }[] | undefined)?.map((o) =>
            refused.has(o.Key) ? { ...o, StorageClass: 'INTELLIGENT_TIERING' } : o,
          ),
        };
      }
      return out;
    } as never);
    try {
      const [r] = (await sync({ checkOnly: true, repositories: ['s3'] })).repositories;
      expect(r!.check!.problems).toEqual([]);
      expect(r!.check!.archived).toBe(2);
      const objects = r!.check!.counts.logical.remote + r!.check!.counts.base.remote + r!.check!.counts.wal.remote;
      expect(r!.check!.contentChecked).toBe(objects - 2); // everything else is still read back
      // Not read back is not unchecked: an archived object cut short is still named.
      const file = s3.objectPath('offsite', dump);
      const bytes = await readFile(file);
      await writeFile(file, bytes.subarray(0, bytes.length - 1));
      try {
        const check = await failure(await startSync({ checkOnly: true, repositories: ['s3'] }));
        expect(check.message).toContain(
          `short ${dump.replace(/^pgwarden\//, '')}: ${bytes.length - 1} bytes on the remote`,
        );
      } finally {
        await writeFile(file, bytes);
      }
    } finally {
      spy.mockRestore();
    }
  }, 120_000);

  it('survives the S3 server stopping in the middle of a multipart upload: one correct copy afterwards', async () => {
    // 13 MiB of random bytes: a multipart upload of 5 MiB parts, slowed to 3 MB/s.
    await setup.cluster.query('CREATE DATABASE bulk');
    await setup.cluster.query(
      `CREATE TABLE blob AS SELECT g AS id, decode(md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text), 'hex') AS b FROM generate_series(1, 200000) g`,
      'bulk',
    );
    await env.client.workflow.execute('fullBackup', {
      taskQueue: queue,
      workflowId: `${queue}/full-bulk`,
      args: [{ cluster: 'main', database: 'bulk' }],
    });
    const handle = await startSync({ repositories: ['slow'] });
    // Seen from the server: the dump's multipart upload has begun (heartbeats are throttled, and a
    // 5 s upload may show none).
    for (const deadline = Date.now() + 90_000; ;) {
      const open = await s3Client.send(new ListMultipartUploadsCommand({ Bucket: 'slow' }));
      if ((open.Uploads ?? []).some((u) => u.Key?.startsWith('main/logical/bulk/'))) break;
      if (Date.now() > deadline) throw new Error('no multipart upload of the bulk dump began within 90 s');
      await sleep(100);
    }
    // Down for longer than the upload resends a request (after 1 s, then 2 s): the attempt fails.
    await s3.stop();
    await sleep(6000);
    await s3.start();
    const result = (await handle.result()) as OffsiteSyncResult;
    expect(result.repositories[0]!.check!.problems).toEqual([]);
    // The activity failed once and a retry finished the job.
    const history = await handle.fetchHistory();
    expect(
      history.events!.some(
        (e) => e.activityTaskStartedEventAttributes && e.activityTaskStartedEventAttributes.attempt! > 1,
      ),
    ).toBe(true);
    const bulk = (await s3Keys('slow')).filter((k) => k.startsWith('main/logical/bulk/'));
    expect(bulk.filter((k) => k.includes('dump'))).toHaveLength(1);
    const uploads = await s3Client.send(new ListMultipartUploadsCommand({ Bucket: 'slow' }));
    expect(uploads.Uploads ?? []).toEqual([]);
  }, 180_000);

  it('refuses bad repositories with clear, non-retryable errors that name them and hold no secret', async () => {
    const cases: [string, RegExp][] = [
      ['no-bucket', /"no-bucket".*no-such-bucket.*does not exist/s],
      ['bad-credentials', /"bad-credentials".*credentials/s],
      ['unreachable', /"unreachable".*cannot reach 127\.0\.0\.1/s],
      ['wrong-host-key', /"wrong-host-key".*host key/s],
    ];
    for (const [repository, message] of cases) {
      const handle = await startSync({ repositories: [repository] });
      const f = await failure(handle);
      expect(f.type).toBe('OffsiteSyncFailed');
      expect(f.message).toMatch(message);
      // Refused by the probe at once: one attempt, non-retryable, nothing uploaded.
      const events = (await handle.fetchHistory()).events!;
      expect(events.filter((e) => e.activityTaskStartedEventAttributes)).toHaveLength(2); // plan, probe
      const probeFailure = events.find((e) => e.activityTaskFailedEventAttributes)!.activityTaskFailedEventAttributes!
        .failure!;
      expect(probeFailure.applicationFailureInfo?.nonRetryable, repository).toBe(true);
      const history = JSON.stringify(await handle.fetchHistory());
      for (const secret of [s3.secretKey, BAD_SECRET]) expect(history).not.toContain(secret);
    }
  }, 120_000);

  it('one broken repository never silences the others: the rsync copy is made and checked, the run fails naming every broken one', async () => {
    const handle = await startSync({ repositories: ['bad-credentials', 'fresh', 'no-bucket'] });
    const f = await failure(handle);
    expect(f.type).toBe('OffsiteSyncFailed');
    expect(f.message).toMatch(/^bad-credentials: .*credentials refused/m);
    expect(f.message).toMatch(/^no-bucket: .*does not exist/m);
    expect(f.message).not.toMatch(/^fresh:/m);
    // The failure carries every repository's result: the good one got everything and checked clean.
    const err = (await handle.result().catch((e: unknown) => e)) as WorkflowFailedError;
    const details = (err.cause as Error & { details?: unknown[] }).details?.[0] as OffsiteSyncResult;
    const fresh = details.repositories.find((r) => r.repository === 'fresh')!;
    expect(fresh.error).toBeUndefined();
    expect(fresh.sync!.uploaded).toBeGreaterThan(6);
    expect(fresh.check!.problems).toEqual([]);
    for (const kind of ['logical', 'base', 'wal'] as const)
      expect(fresh.check!.counts[kind].remote).toBe(fresh.check!.counts[kind].local);
    expect(details.repositories.filter((r) => r.error).map((r) => r.repository)).toEqual([
      'bad-credentials',
      'no-bucket',
    ]);
  }, 120_000);

  it('names a foreign object in a backup directory although it carries a matching sha256 record; the CLI prints one problem per line', async () => {
    const dir = (await dumpKey()).split('/').slice(0, -1).join('/');
    const foreign = `${dir}/extra.bin`;
    const bytes = Buffer.from('not part of this backup\n');
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    // S3: with the sha256 metadata pgwarden records; rsync: with a `.sha256` sidecar.
    await s3Client.send(
      new PutObjectCommand({ Bucket: 'offsite', Key: `pgwarden/${foreign}`, Body: bytes, Metadata: { sha256 } }),
    );
    const freshFile = join(sshd.remoteRoot, 'fresh', foreign);
    await writeFile(freshFile, bytes);
    await writeFile(`${freshFile}.sha256`, `${sha256}\n`);
    try {
      const check = await failure(await startSync({ repositories: ['s3', 'fresh'], checkOnly: true }));
      expect(check.message).toMatch(new RegExp(`^s3: offsite repository "s3" failed its check \\(1 problem\\)`, 'm'));
      expect(check.message).toMatch(
        new RegExp(`^fresh: offsite repository "fresh" failed its check \\(1 problem\\)`, 'm'),
      );
      expect(
        check.message.split('\n').filter((l) => l.startsWith(`unexpected ${foreign}: not listed by manifest.json`)),
      ).toHaveLength(2);

      const cli = await execa(
        join(import.meta.dirname, '../../bin/pgwarden'),
        ['--config', setup.configFile, 'offsite', 'check', '--cluster', 'main', '--repository', 'fresh'],
        {
          env: { PGWARDEN_FROM_SOURCE: '1', TEMPORAL_ADDRESS: inject('temporalAddress') },
          stdin: 'ignore',
          reject: false,
        },
      );
      expect(cli.exitCode).toBe(1);
      const out = cli.stdout.split('\n');
      expect(out).toContain(
        `  unexpected ${foreign}: not listed by manifest.json (a foreign object in a backup's place, whatever sha256 it carries)`,
      );
      expect(
        out.find((l) => l.startsWith('fresh: FAILED: offsite repository "fresh" failed its check (1 problem):')),
      ).toBeDefined();
      expect(cli.stderr.trim()).toBe('pgwarden: offsite check failed for fresh (problems above)');
    } finally {
      await s3Client.send(new DeleteObjectCommand({ Bucket: 'offsite', Key: `pgwarden/${foreign}` }));
      await rm(freshFile);
      await rm(`${freshFile}.sha256`);
    }
    for (const r of (await sync({ repositories: ['s3', 'fresh'], checkOnly: true })).repositories)
      expect(r.check!.problems).toEqual([]);
  }, 120_000);

  it('deletes nothing offsite when the local repository is wiped; verify and a rehearsal PITR then work from offsite alone', async () => {
    // Offsite is current (the WAL written since, too), then the disk is lost.
    await switchAndArchive(setup.cluster);
    for (const r of (await sync({ check: 'quick' })).repositories) expect(r.check!.problems).toEqual([]);
    const before = { s3: await s3Keys('offsite'), rsync: await rsyncFiles() };
    // The disk is gone: every backup and archived WAL file (the WAL directory stays so archiving goes on).
    await rm(join(setup.repository, 'main/logical'), { recursive: true, force: true });
    await rm(join(setup.repository, 'main/base'), { recursive: true, force: true });
    for (const f of await readdir(join(setup.repository, 'main/wal'))) await rm(join(setup.repository, 'main/wal', f));
    const after = await sync();
    for (const r of after.repositories) expect(r.sync!.uploaded).toBe(0);
    expect(await s3Keys('offsite')).toEqual(expect.arrayContaining(before.s3));
    expect(await rsyncFiles()).toEqual(expect.arrayContaining(before.rsync));

    const verified = (await env.client.workflow.execute('verifyBackup', {
      taskQueue: queue,
      workflowId: `${queue}/verify`,
      args: [{ cluster: 'main', database: 'app' }],
    })) as VerifyBackupResult;
    expect(verified).toMatchObject({ ok: true, rows: 5000 });

    const pitr = (await env.client.workflow.execute('pointInTimeRecovery', {
      taskQueue: queue,
      workflowId: `${queue}/pitr`,
      args: [{ cluster: 'main', target: { latest: true }, mode: 'rehearsal' }],
    })) as PointInTimeRecoveryResult;
    expect(pitr.outcome).toBe('rehearsed');
    expect(await readdir(join(setup.repository, 'main/base'))).toHaveLength(1);
  }, 240_000);
});

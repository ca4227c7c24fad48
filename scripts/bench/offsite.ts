// npm run bench:offsite — offsiteSync of a real backup set to a local S3 server (versitygw) against
// a plain upload of the same files with the SDK's `Upload` and default settings.
//
// The realistic database of the backup benchmark on a cluster archiving through the built
// `pgwarden wal-push` (encrypted); a fullBackup, a baseBackup and about --wal-mb of WAL from
// `pgbench -n` (all untimed). Then, median of three each, runs alternating, each into an empty
// bucket:
//   raw       the objects pgwarden uploaded, one after the other, `new Upload({ client,
//             params: { Bucket, Key, Body: createReadStream(file) } }).done()`
//   pgwarden  the offsiteSync workflow on a fresh built worker: plan (probe), upload with sha256
//             metadata, remote retention, and the remote check (`--check full`, the default: every
//             object listed, HEADed and read back and hashed; `--check quick`: new uploads only)
// and the worker's peak RSS over its offsite runs (a worker started after the backups).
// Prints the figures and, last, one JSON line. Options: --scale N (default 70), --wal-mb N (default 512),
// --check full|quick.
import { createReadStream } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { paginateListObjectsV2, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Client, Connection } from '@temporalio/client';
import { execa } from 'execa';
import { startDevServer, type DevServer } from '../../src/worker/devServer.js';
import type { OffsiteSyncResult } from '../../src/workflows/offsiteSync.js';
import { switchAndArchive } from '../../test/helpers/archiving.js';
import { createTestKey, type TestKey } from '../../test/helpers/gpg.js';
import { freePort } from '../../test/helpers/ports.js';
import { startCluster, type TestCluster } from '../../test/helpers/postgres.js';
import { PG_BIN } from '../../test/helpers/require.js';
import { startS3Server, type S3Server } from '../../test/helpers/s3.js';
import { buildBenchDatabase } from './database.js';
import { buildDist, median, option, startBuiltWorker, type BenchWorker } from './worker.js';

const scale = option('--scale', 70);
const walMb = option('--wal-mb', 512);
const check =
  process.argv.includes('--check') && process.argv[process.argv.indexOf('--check') + 1] === 'quick' ? 'quick' : 'full';
const log = (line: string) => console.log(line);
const TASK_QUEUE = 'pgwarden-bench';
const RUNS = 3;
const since = (started: bigint) => Number(process.hrtime.bigint() - started) / 1e9;

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && !e.name.endsWith('.partial'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

async function main() {
  const work = await mkdtemp(join(tmpdir(), 'pgwarden-bench-offsite-'));
  await chmod(work, 0o755);
  let key: TestKey | undefined;
  let server: DevServer | undefined;
  let dist: string | undefined;
  let s3: S3Server | undefined;
  let cluster: TestCluster | undefined;
  let worker: BenchWorker | undefined;
  let connection: Connection | undefined;
  try {
    log('building dist, test key, Temporal dev server, S3 server...');
    await Promise.all([
      createTestKey().then((k) => (key = k)),
      freePort().then(async (port) => (server = await startDevServer({ port }))),
      buildDist().then((d) => (dist = d)),
      startS3Server().then((s) => (s3 = s)),
    ]);
    if (!key || !server || !dist || !s3) throw new Error('setup incomplete');
    for (let i = 0; i < RUNS; i++) await Promise.all([s3.bucket(`raw-${i}`), s3.bucket(`pgwarden-${i}`)]);
    const cli = join(dist, 'cli/main.js');
    const repository = join(work, 'repo');
    const walDir = join(repository, 'main', 'wal');
    await mkdir(walDir, { recursive: true });
    const ids =
      process.getuid?.() === 0
        ? {
            uid: Number((await execa('id', ['-u', 'postgres'])).stdout),
            gid: Number((await execa('id', ['-g', 'postgres'])).stdout),
          }
        : undefined;
    if (ids) for (const d of [repository, join(repository, 'main'), walDir]) await chown(d, ids.uid, ids.gid);
    const publicKeyFile = join(work, 'backup.pub.asc');
    await copyFile(key.publicKeyFile, publicKeyFile);
    await chmod(publicKeyFile, 0o644);
    const configFile = join(work, 'pgwarden.config.json');
    const s3Repo = (bucket: string) => ({
      type: 's3',
      bucket,
      endpoint: s3!.endpoint,
      forcePathStyle: true,
      accessKeyIdEnv: 'BENCH_S3_KEY',
      secretAccessKeyEnv: 'BENCH_S3_SECRET',
    });
    cluster = await startCluster({
      settings: {
        shared_buffers: "'256MB'",
        wal_level: 'replica',
        archive_mode: 'on',
        archive_command: `'${process.execPath} ${cli} --config ${configFile} wal-push --cluster main %p %f'`,
        max_wal_senders: '4',
      },
      beforeStart: async (c) => {
        const repositories: Record<string, unknown> = { local: { type: 'local', path: repository } };
        for (let i = 0; i < RUNS; i++) repositories[`pgwarden-${i}`] = s3Repo(`pgwarden-${i}`);
        await writeFile(
          configFile,
          JSON.stringify({
            temporal: { address: server!.address, taskQueue: TASK_QUEUE },
            clusters: {
              main: {
                host: c.host,
                port: c.port,
                user: 'postgres',
                passwordEnv: 'BENCH_PGPASSWORD',
                dataDirectory: c.dataDir,
                hostQueue: 'pgwarden@bench',
              },
            },
            repositories,
            encryption: {
              recipients: [publicKeyFile],
              privateKeyFile: key!.privateKeyFile,
              passphraseEnv: 'BENCH_PASSPHRASE',
            },
            worker: { host: 'bench' },
          }),
        );
        await chmod(configFile, 0o644);
      },
    });
    const secrets = {
      BENCH_PGPASSWORD: cluster.password,
      BENCH_PASSPHRASE: key.passphrase,
      BENCH_S3_KEY: s3.accessKey,
      BENCH_S3_SECRET: s3.secretKey,
    };
    await buildBenchDatabase(cluster, scale, log);

    log('the backup set (untimed): fullBackup, baseBackup, then WAL from pgbench');
    worker = await startBuiltWorker(configFile, secrets, dist);
    connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });
    await client.workflow.execute('fullBackup', {
      taskQueue: TASK_QUEUE,
      workflowId: 'bench-full',
      args: [{ cluster: 'main', database: 'bench' }],
    });
    await client.workflow.execute('baseBackup', {
      taskQueue: TASK_QUEUE,
      workflowId: 'bench-base',
      args: [{ cluster: 'main' }],
    });
    const walBytes = async () =>
      Number(
        (await cluster!.query<{ b: string }>(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS b`))[0]!.b,
      );
    const startWal = await walBytes();
    while ((await walBytes()) - startWal < walMb * 1048576) {
      await execa(join(PG_BIN, 'pgbench'), ['-n', '-c', '2', '-j', '2', '-t', '5000'], { env: cluster.env('bench') });
    }
    await switchAndArchive(cluster, 60 * 60_000);
    await execa(process.getuid?.() === 0 ? 'runuser' : join(PG_BIN, 'pg_ctl'), [
      ...(process.getuid?.() === 0 ? ['-u', 'postgres', '--', join(PG_BIN, 'pg_ctl')] : []),
      '-D',
      cluster.dataDir,
      '-m',
      'fast',
      '-w',
      'stop',
    ]);
    await worker.stop();
    worker = undefined;
    const files = await filesUnder(join(repository, 'main'));
    let totalBytes = 0;
    for (const f of files) totalBytes += (await stat(f)).size;
    log(`  ${files.length} files, ${(totalBytes / 1e6).toFixed(0)} MB (live cluster stopped: the set is final)`);

    // A fresh worker: its peak RSS is the offsite runs', not the backups'.
    worker = await startBuiltWorker(configFile, secrets, dist);
    log(
      `  a fresh worker for the offsite runs: ${((await worker.memoryKb('VmRSS')) / 1024).toFixed(0)} MB resident before them`,
    );
    const raw = new S3Client({
      endpoint: s3.endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
    });
    // The same objects pgwarden uploaded (its first run's bucket): WAL the remote's retention would
    // drop (before the base backup) is not uploaded by pgwarden, so the raw side skips it too.
    const keys: string[] = [];
    const rawRun = async (i: number) => {
      if (keys.length === 0) {
        for await (const page of paginateListObjectsV2({ client: raw }, { Bucket: 'pgwarden-0' }))
          keys.push(...(page.Contents ?? []).map((o) => o.Key!));
      }
      const started = process.hrtime.bigint();
      for (const key of keys)
        await new Upload({
          client: raw,
          params: { Bucket: `raw-${i}`, Key: key, Body: createReadStream(join(repository, key)) },
        }).done();
      return since(started);
    };
    const pgwardenRun = async (i: number) => {
      const started = process.hrtime.bigint();
      const result = (await client.workflow.execute('offsiteSync', {
        taskQueue: TASK_QUEUE,
        workflowId: `bench-offsite-${i}`,
        args: [{ cluster: 'main', repositories: [`pgwarden-${i}`], check }],
      })) as OffsiteSyncResult;
      return { seconds: since(started), result };
    };
    log(`upload, median of ${RUNS} each (pgwarden and raw runs alternate; pgwarden check: ${check})`);
    const rawRuns: number[] = [];
    const pgwardenRuns: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const run = await pgwardenRun(i);
      pgwardenRuns.push(run.seconds);
      const r = run.result.repositories[0]!;
      log(
        `  pgwarden #${i + 1}: ${run.seconds.toFixed(1)} s (${r.sync!.uploaded} objects, ${(r.sync!.uploadedBytes / 1e6).toFixed(0)} MB; check read back ${r.check!.contentChecked})`,
      );
      rawRuns.push(await rawRun(i));
      log(`  raw #${i + 1}: ${rawRuns.at(-1)!.toFixed(1)} s (${keys.length} objects)`);
    }
    raw.destroy();
    const peakKb = await worker.memoryKb('VmHWM');
    const rawSeconds = median(rawRuns, (v) => v);
    const pgwardenSeconds = median(pgwardenRuns, (v) => v);
    log(`raw:      ${rawSeconds.toFixed(1)} s (runs: ${rawRuns.map((v) => v.toFixed(1)).join(', ')})`);
    log(
      `pgwarden: ${pgwardenSeconds.toFixed(1)} s (runs: ${pgwardenRuns.map((v) => v.toFixed(1)).join(', ')}); worker peak RSS ${(peakKb / 1024).toFixed(0)} MB`,
    );
    const round = (n: number, d = 2) => Number(n.toFixed(d));
    console.log(
      JSON.stringify({
        bench: 'offsiteSync',
        rawSeconds: round(rawSeconds),
        pgwardenSeconds: round(pgwardenSeconds),
        ratio: round(pgwardenSeconds / rawSeconds),
        peakRssMb: round(peakKb / 1024, 0),
      }),
    );
  } finally {
    await worker?.stop().catch(() => undefined);
    await connection?.close().catch(() => undefined);
    await cluster?.stop().catch(() => undefined);
    await s3?.destroy().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    await key?.remove().catch(() => undefined);
    if (dist) await rm(dist, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

// npm run bench:pitr — a rehearsal point-in-time recovery against the same recovery done by hand.
//
// The realistic database of the backup benchmark on a cluster that archives through the built
// `pgwarden wal-push` (encrypted, as the postgres user), a base backup, then about --wal-mb of WAL
// from `pgbench -n` traffic, all archived. Then, median of three each (runs alternate, so noise
// from the shared cores falls on both sides alike):
//   manual    pg_basebackup -Ft -X none taken right after pgwarden's; tar -xf base.tar, chown,
//             restore_command = 'cp <plain WAL dir>/%f %p' (every archived segment decoded into it
//             beforehand, untimed), recovery.signal, pg_ctl start; timed from the extraction to
//             pg_is_in_recovery() = false
//   pgwarden  the pointInTimeRecovery workflow, {latest: true}, rehearsal mode, on a built worker
//             process: plan, stage (decrypt, unzstd, untar; WAL decoded while it replays), recover,
//             verify, the scratch copy removed; timed from start to result
// and the per-segment wall time of the built CLI's wal-get (every archived segment, decoding the
// plain directory) and wal-push, p50: 20 segments into a scratch repository, once as
// archive_command calls it with walPush.async (the live cluster's mode here: segments marked ready
// in a data directory's pg_wal, one call after the other; walPushMsP50) and once pushed directly
// one after the other (walPushSyncMsP50).
// The live cluster is stopped once its WAL is archived: the archive cannot grow between runs (both
// sides replay the same WAL) and it does not compete for the cores.
// Prints the figures and, last, one JSON line. Options: --scale N (default 70), --wal-mb N (default
// 1024), --plain (an unencrypted archive: compression only).
import { existsSync } from 'node:fs';
import {
  appendFile,
  chmod,
  chown,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { Client, Connection } from '@temporalio/client';
import { startDevServer, type DevServer } from '../../src/worker/devServer.js';
import type { BaseBackupWorkflowResult } from '../../src/workflows/baseBackup.js';
import type { PointInTimeRecoveryResult } from '../../src/workflows/pointInTimeRecovery.js';
import { switchAndArchive } from '../../test/helpers/archiving.js';
import { createTestKey, type TestKey } from '../../test/helpers/gpg.js';
import { startCluster, type TestCluster } from '../../test/helpers/postgres.js';
import { freePort } from '../../test/helpers/ports.js';
import { PG_BIN } from '../../test/helpers/require.js';
import { buildBenchDatabase } from './database.js';
import { buildDist, median, option, startBuiltWorker, type BenchWorker } from './worker.js';

const scale = option('--scale', 70);
// --plain: no encryption (WAL and base backup compressed only), to see what decryption costs.
const plain = process.argv.includes('--plain');
const walMb = option('--wal-mb', 1024);
const log = (line: string) => console.log(line);
const isRoot = process.getuid?.() === 0;
const SEGMENT = /^[0-9A-F]{24}$/;
const TASK_QUEUE = 'pgwarden-bench';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const since = (started: bigint) => Number(process.hrtime.bigint() - started) / 1e9;

async function asPostgres(cmd: string, args: string[]) {
  return isRoot
    ? execa('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdin: 'ignore' })
    : execa(cmd, args, { stdin: 'ignore' });
}

async function postgresIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (!isRoot) return undefined;
  return {
    uid: Number((await execa('id', ['-u', 'postgres'])).stdout),
    gid: Number((await execa('id', ['-g', 'postgres'])).stdout),
  };
}

async function main() {
  const work = await mkdtemp(join(tmpdir(), 'pgwarden-bench-pitr-'));
  await chmod(work, 0o755); // the postgres user reads the config and key here, and cp's the plain WAL
  const ids = await postgresIds();
  const toPostgres = async (path: string) => {
    if (ids) await chown(path, ids.uid, ids.gid);
  };
  let key: TestKey | undefined;
  let server: DevServer | undefined;
  let dist: string | undefined;
  let cluster: TestCluster | undefined;
  let worker: BenchWorker | undefined;
  let connection: Connection | undefined;
  try {
    log('building dist (tsc + workflow bundle), test key, Temporal dev server...');
    // Each is kept as soon as it exists, so `finally` removes it even if another one fails.
    await Promise.all([
      createTestKey().then((k) => (key = k)),
      freePort().then(async (port) => (server = await startDevServer({ port }))),
      buildDist().then((d) => (dist = d)),
    ]);
    if (!key || !server || !dist) throw new Error('setup incomplete');
    const cli = join(dist, 'cli/main.js');
    const repository = join(work, 'repo');
    const walDir = join(repository, 'main', 'wal');
    await mkdir(walDir, { recursive: true });
    for (const d of [repository, join(repository, 'main'), walDir]) await toPostgres(d);
    // wal-push runs as postgres, who cannot read the key's gpg home: a readable copy of the public key.
    const publicKeyFile = join(work, 'backup.pub.asc');
    await copyFile(key.publicKeyFile, publicKeyFile);
    await chmod(publicKeyFile, 0o644);
    const configFile = join(work, 'pgwarden.config.json');
    const pushConfigFile = join(work, 'push-scratch.config.json');
    const asyncPushConfigFile = join(work, 'push-scratch-async.config.json');
    // The live cluster archives asynchronously (walPush.async); its pusher's spool is the postgres user's.
    const spoolFor = (name: string) => join(work, name);
    const configFor = (c: { host: string; port: number; dataDir: string }, repo: string, spool?: string) => ({
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
      repositories: { local: { type: 'local', path: repo } },
      ...(plain
        ? {}
        : {
            encryption: {
              recipients: [publicKeyFile],
              privateKeyFile: key!.privateKeyFile,
              passphraseEnv: 'BENCH_PASSPHRASE',
            },
          }),
      ...(spool ? { walPush: { async: true, spoolDirectory: spool } } : {}),
      worker: { host: 'bench' },
    });
    cluster = await startCluster({
      settings: {
        shared_buffers: "'256MB'",
        wal_level: 'replica',
        archive_mode: 'on',
        archive_command: `'${process.execPath} ${cli} --config ${configFile} wal-push --cluster main %p %f'`,
        full_page_writes: 'on',
        max_wal_senders: '4',
      },
      beforeStart: async (c) => {
        await mkdir(spoolFor('spool'), { mode: 0o700 });
        await toPostgres(spoolFor('spool'));
        await writeFile(configFile, JSON.stringify(configFor(c, repository, spoolFor('spool'))));
        await chmod(configFile, 0o644);
        await writeFile(pushConfigFile, JSON.stringify(configFor(c, join(work, 'push-scratch-repo'))));
        await writeFile(
          asyncPushConfigFile,
          JSON.stringify(configFor(c, join(work, 'push-scratch-repo'), spoolFor('push-scratch-spool'))),
        );
      },
    });
    const secrets = { BENCH_PGPASSWORD: cluster.password, BENCH_PASSPHRASE: key.passphrase };
    await buildBenchDatabase(cluster, scale, log);

    log('base backups (untimed): pgwarden baseBackup workflow, then pg_basebackup -Ft -X none for the manual side');
    worker = await startBuiltWorker(configFile, secrets, dist);
    connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });
    let t0 = process.hrtime.bigint();
    const base = (await client.workflow.execute('baseBackup', {
      taskQueue: TASK_QUEUE,
      workflowId: 'bench-base',
      args: [{ cluster: 'main', backupId: '20261122T030000Z' }],
    })) as BaseBackupWorkflowResult;
    log(
      `  pgwarden: ${(base.bytes / 1e6).toFixed(0)} MB stored, ${base.startLsn} → ${base.stopLsn}, ${since(t0).toFixed(1)} s`,
    );
    const manualBase = join(work, 'manual-base');
    t0 = process.hrtime.bigint();
    await execa(
      join(PG_BIN, 'pg_basebackup'),
      ['-D', manualBase, '-Ft', '-X', 'none', '--checkpoint=fast', '--no-password'],
      { env: cluster.env() },
    );
    const baseTar = join(manualBase, 'base.tar');
    log(`  manual: base.tar ${((await stat(baseTar)).size / 1e6).toFixed(0)} MB, ${since(t0).toFixed(1)} s`);

    log(`WAL traffic: pgbench -n -c 2 -j 2 until ${walMb} MB of WAL`);
    const env = cluster.env('bench');
    const lsn = async () => (await cluster!.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn'))[0]!.lsn;
    const walSince = async (from: string) =>
      Number(
        (await cluster!.query<{ b: string }>(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '${from}')::text AS b`))[0]!
          .b,
      );
    const startLsn = await lsn();
    const target = walMb * 1024 * 1024;
    let generated = 0;
    let transactions = 0;
    let perClient = 2000;
    t0 = process.hrtime.bigint();
    while (generated < target) {
      await execa(join(PG_BIN, 'pgbench'), ['-n', '-c', '2', '-j', '2', '-t', String(perClient)], { env });
      transactions += 2 * perClient;
      const before = generated;
      generated = await walSince(startLsn);
      // WAL per transaction falls as full-page images thin out after a checkpoint: size the next
      // round on the last one (at most 4 times as long), aiming a little past the target.
      const perTxn = Math.max(1, (generated - before) / (2 * perClient));
      log(
        `  ${transactions} transactions, ${(generated / 1048576).toFixed(0)} MB of WAL (last round ${(perTxn / 1024).toFixed(1)} KiB each), ${since(t0).toFixed(0)} s`,
      );
      perClient = Math.min(4 * perClient, Math.max(1000, Math.ceil((1.05 * target - generated) / perTxn / 2)));
    }
    t0 = process.hrtime.bigint();
    const lastWal = await switchAndArchive(cluster, 60 * 60_000);
    const replayBytes = await walSince(base.startLsn);
    log(
      `  archived through ${lastWal} (waited ${since(t0).toFixed(0)} s for the archiver); ${(replayBytes / 1048576).toFixed(0)} MB of WAL after the base backup's start`,
    );
    // Nothing may reach the archive after this: both sides replay exactly the same WAL.
    await asPostgres(join(PG_BIN, 'pg_ctl'), ['-D', cluster.dataDir, '-m', 'fast', '-w', 'stop']);
    log('  live cluster stopped (the archive is final)');

    log(
      'decoding every archived WAL file into a plain directory with the built wal-get (untimed; wal-get timed per segment)',
    );
    const plainWal = join(work, 'plain-wal');
    await mkdir(plainWal);
    // Owned by postgres before wal-get writes into it: as root, wal-get gives each file the
    // directory's owner at 0600, and the manual recovery's `cp` runs as postgres.
    await toPostgres(plainWal);
    const archived = (await readdir(walDir))
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length))
      .sort();
    const cliEnv = { ...process.env, ...secrets };
    const getMs: number[] = [];
    t0 = process.hrtime.bigint();
    for (const name of archived) {
      const started = process.hrtime.bigint();
      await execa(
        process.execPath,
        [cli, '--config', configFile, 'wal-get', '--cluster', 'main', name, join(plainWal, name)],
        { env: cliEnv },
      );
      if (SEGMENT.test(name)) getMs.push(since(started) * 1000);
    }
    const walGetMsP50 = median(getMs, (v) => v);
    log(
      `  ${archived.length} files (${getMs.length} segments) in ${since(t0).toFixed(0)} s; wal-get p50 ${walGetMsP50.toFixed(0)} ms (min ${Math.min(...getMs).toFixed(0)}, max ${Math.max(...getMs).toFixed(0)})`,
    );

    const segments = archived.filter((n) => SEGMENT.test(n));
    const sample = Array.from(
      { length: Math.min(20, segments.length) },
      (_, i) => segments[Math.floor((i * segments.length) / Math.min(20, segments.length))]!,
    );
    const pushMs: number[] = [];
    for (const name of sample) {
      const started = process.hrtime.bigint();
      await execa(
        process.execPath,
        [cli, '--config', pushConfigFile, 'wal-push', '--cluster', 'main', join(plainWal, name), name],
        { env: cliEnv },
      );
      pushMs.push(since(started) * 1000);
    }
    const walPushSyncMsP50 = median(pushMs, (v) => v);
    log(
      `wal-push of ${sample.length} segments into a scratch repository, one call after the other: p50 ${walPushSyncMsP50.toFixed(0)} ms (min ${Math.min(...pushMs).toFixed(0)}, max ${Math.max(...pushMs).toFixed(0)})`,
    );
    await rm(join(work, 'push-scratch-repo'), { recursive: true, force: true });

    // As PostgreSQL's archiver runs it with walPush.async: a data directory whose pg_wal holds the
    // sample segments marked ready; archive_command for each in turn, from the data directory,
    // each marked done when it succeeds. The first call starts the pusher.
    const fakeData = join(work, 'push-archiver-data');
    await mkdir(join(fakeData, 'pg_wal', 'archive_status'), { recursive: true });
    const fakeNames = sample.map((_, i) => `00000001000000AA000000${i.toString(16).toUpperCase().padStart(2, '0')}`);
    for (const [i, name] of sample.entries()) {
      await copyFile(join(plainWal, name), join(fakeData, 'pg_wal', fakeNames[i]!));
      await writeFile(join(fakeData, 'pg_wal', 'archive_status', `${fakeNames[i]}.ready`), '');
    }
    const asyncMs: number[] = [];
    const archiverStarted = process.hrtime.bigint();
    for (const name of fakeNames) {
      const started = process.hrtime.bigint();
      await execa(
        process.execPath,
        [cli, '--config', asyncPushConfigFile, 'wal-push', '--cluster', 'main', `pg_wal/${name}`, name],
        { env: cliEnv, cwd: fakeData },
      );
      asyncMs.push(since(started) * 1000);
      await rename(
        join(fakeData, 'pg_wal', 'archive_status', `${name}.ready`),
        join(fakeData, 'pg_wal', 'archive_status', `${name}.done`),
      );
    }
    const archiverSeconds = since(archiverStarted);
    const walPushMsP50 = median(asyncMs, (v) => v);
    log(
      `wal-push with walPush.async, as the archiver calls it for ${fakeNames.length} ready segments: p50 ${walPushMsP50.toFixed(0)} ms ` +
        `(min ${Math.min(...asyncMs).toFixed(0)}, max ${Math.max(...asyncMs).toFixed(0)}; all ${archiverSeconds.toFixed(1)} s)`,
    );
    const pusherPid = (
      JSON.parse(
        await readFile(join(spoolFor('push-scratch-spool'), 'main', 'pusher.pid'), 'utf8').catch(() => '{}'),
      ) as { pid?: number }
    ).pid;
    if (pusherPid) process.kill(pusherPid, 'SIGTERM');
    await rm(fakeData, { recursive: true, force: true });
    await rm(join(work, 'push-scratch-repo'), { recursive: true, force: true });

    const manualRun = async (
      i: number,
    ): Promise<{ seconds: number; extractSeconds: number; reachedLsn: string; redoDone: string }> => {
      const dir = join(work, `manual-${i}`);
      const data = join(dir, 'data');
      const logFile = join(dir, 'server.log');
      await mkdir(data, { recursive: true });
      await toPostgres(dir);
      const port = await freePort();
      const started = process.hrtime.bigint();
      await execa('tar', ['-xf', baseTar, '-C', data]);
      if (ids) await execa('chown', ['-R', `${ids.uid}:${ids.gid}`, data]);
      await chmod(data, 0o700);
      const extractSeconds = since(started);
      await appendFile(
        join(data, 'postgresql.auto.conf'),
        `\n# manual point-in-time recovery\nport = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dir}'\narchive_mode = off\n` +
          `restore_command = 'cp ${plainWal}/%f %p'\nrecovery_target_action = promote\n`,
      );
      await writeFile(join(data, 'recovery.signal'), '');
      await toPostgres(join(data, 'recovery.signal'));
      await asPostgres(join(PG_BIN, 'pg_ctl'), ['-D', data, '-l', logFile, '-W', 'start']);
      try {
        for (;;) {
          const c = new pg.Client({
            host: '127.0.0.1',
            port,
            user: 'postgres',
            password: cluster!.password,
            database: 'postgres',
            connectionTimeoutMillis: 3000,
          });
          const state = await c
            .connect()
            .then(() =>
              c.query<{ r: boolean; lsn: string }>(
                'SELECT pg_is_in_recovery() AS r, CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS lsn',
              ),
            )
            .then((r) => r.rows[0]!)
            .catch(() => undefined)
            .finally(() => c.end().catch(() => undefined));
          const inRecovery = state?.r;
          if (inRecovery === false) {
            const seconds = since(started);
            // Where replay ended, to compare with pgwarden's reachedLsn: both must replay all the WAL.
            const redoDone = /redo done at (\S+)/.exec(await readFile(logFile, 'utf8'))?.[1] ?? '?';
            return { seconds, extractSeconds, reachedLsn: state!.lsn, redoDone };
          }
          if (inRecovery === undefined && since(started) > 10 && !existsSync(join(data, 'postmaster.pid'))) {
            throw new Error(
              `manual recovery ${i}: the server stopped: ${(await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join(' | ')}`,
            );
          }
          await sleep(250);
        }
      } finally {
        await asPostgres(join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
        await rm(dir, { recursive: true, force: true });
      }
    };
    const pgwardenRun = async (i: number): Promise<{ seconds: number; result: PointInTimeRecoveryResult }> => {
      const started = process.hrtime.bigint();
      const result = (await client.workflow.execute('pointInTimeRecovery', {
        taskQueue: TASK_QUEUE,
        workflowId: `bench-pitr-${i}`,
        args: [{ cluster: 'main', target: { latest: true }, mode: 'rehearsal' }],
      })) as PointInTimeRecoveryResult;
      return { seconds: since(started), result };
    };

    log('recovery to the last commit, median of 3 each (manual and pgwarden runs alternate)');
    const manualRuns: { seconds: number; extractSeconds: number; reachedLsn: string; redoDone: string }[] = [];
    const pgwardenRuns: { seconds: number; result: PointInTimeRecoveryResult }[] = [];
    const steps = (r: PointInTimeRecoveryResult) => r.steps.map((s) => `${s.step} ${s.seconds.toFixed(1)}`).join(', ');
    for (let i = 0; i < 3; i++) {
      const m = await manualRun(i);
      manualRuns.push(m);
      log(
        `  manual #${i + 1}: ${m.seconds.toFixed(1)} s (extract ${m.extractSeconds.toFixed(1)}, then replay until promoted; redo done at ${m.redoDone}, reached ${m.reachedLsn})`,
      );
      const run = await pgwardenRun(i);
      pgwardenRuns.push(run);
      log(
        `  pgwarden #${i + 1}: ${run.seconds.toFixed(1)} s (${steps(run.result)}; recoverSeconds ${run.result.recovery?.recoverSeconds.toFixed(1)}, ` +
          `timeline ${run.result.recovery?.timeline}, reached ${run.result.recovery?.reachedLsn})`,
      );
    }
    const manualSeconds = median(manualRuns, (r) => r.seconds).seconds;
    const pgwarden = median(pgwardenRuns, (r) => r.seconds);
    log(`manual:   ${manualSeconds.toFixed(1)} s (runs: ${manualRuns.map((r) => r.seconds.toFixed(1)).join(', ')})`);
    log(
      `pgwarden: ${pgwarden.seconds.toFixed(1)} s (runs: ${pgwardenRuns.map((r) => r.seconds.toFixed(1)).join(', ')}); median run: ${steps(pgwarden.result)}`,
    );
    if (pgwarden.result.recovery?.stoppedAt) log(`  ${pgwarden.result.recovery.stoppedAt}`);

    const round = (n: number, d = 2) => Number(n.toFixed(d));
    console.log(
      JSON.stringify({
        bench: plain ? 'pitr-plain' : 'pitr',
        manualSeconds: round(manualSeconds),
        pgwardenSeconds: round(pgwarden.seconds),
        ratio: round(pgwarden.seconds / manualSeconds),
        walPushMsP50: round(walPushMsP50),
        walGetMsP50: round(walGetMsP50),
        walPushSyncMsP50: round(walPushSyncMsP50),
      }),
    );
  } finally {
    await worker?.stop().catch(() => undefined);
    await connection?.close().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    await Promise.all([
      cluster?.stop(),
      key?.remove(),
      rm(work, { recursive: true, force: true }),
      dist ? rm(dist, { recursive: true, force: true }) : undefined,
    ]);
  }
}

main().catch((err: unknown) => {
  console.error(`bench: ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
});

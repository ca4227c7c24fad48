// npm run bench:pitr — a rehearsal point-in-time recovery against the same recovery done by hand
// and by pgBackRest.
//
// The realistic database of the backup benchmark on a cluster that archives through the built
// `pgwarden wal-push` (encrypted, as the postgres user) and pgBackRest's archive-push, three base
// backups one after the other (pgwarden's, pgBackRest's full, pg_basebackup's; each timed), then
// about --wal-mb of WAL from `pgbench -n` traffic; the state at T recorded (a marker row, the row
// count of pgbench_history, the sum of the branches' balances), all archived. Then, median of three
// each (runs alternate, so noise from the shared cores falls on all sides alike), every recovery
// checked against the state at T (pgwarden's by its own verify step, given the same checks):
//   manual    pg_basebackup -Ft -X none; tar -xf base.tar, chown,
//             restore_command = 'cp <plain WAL dir>/%f %p' (every archived segment decoded into it
//             beforehand, untimed), recovery.signal, pg_ctl start; timed from the extraction to
//             pg_is_in_recovery() = false
//   pgBackRest pgbackrest restore to the end of the archive, start, until promoted (pitrPgbackrest.ts
//             says its settings); in place, the cluster would be down all that time
//   pgwarden  the pointInTimeRecovery workflow, {latest: true}, rehearsal mode, on a built worker
//             process: plan, stage (decrypt, unzstd, untar; WAL decoded while it replays), recover,
//             verify, the scratch copy removed; timed from start to result
// then pgwarden's in-place downtime: three in-place recoveries of the live cluster (started again)
// to the same target, approve → done timed (pitrInPlace.ts; --no-in-place skips them).
// and the per-segment wall time of the built CLI's wal-get (every archived segment, decoding the
// plain directory) and wal-push, p50: 20 segments into a scratch repository, once as
// archive_command calls it with walPush.async (the live cluster's mode here: segments marked ready
// in a data directory's pg_wal, one call after the other; walPushMsP50) and once pushed directly
// one after the other (walPushSyncMsP50).
// The live cluster is stopped once its WAL is archived: the archive cannot grow between runs (all
// sides replay the same WAL) and it does not compete for the cores.
// Prints the figures and, last, one JSON line. Options: --scale N (default 70), --wal-mb N (default
// 1024), --plain (unencrypted archives, pgwarden's and pgBackRest's: compression only).
import { chmod, chown, copyFile, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
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
import { inPlaceRuns } from './pitrInPlace.js';
import { activityTimeline } from './pitrTimeline.js';
import { timeWalPush } from './pitrWalPush.js';
import { archiveBothScript, setUpPgbackrest, type Pgbackrest, type PgbackrestRecovery } from './pitrPgbackrest.js';
import {
  asPostgres,
  checkState,
  duBytes,
  isRoot,
  recordState,
  since,
  startUntilPromoted,
  removeScratch,
  stateChecks,
  stopServer,
} from './pitrServer.js';
import type { StateAtT } from './pitrServer.js';
import { buildDist, median, option, startBuiltWorker, type BenchWorker } from './worker.js';

const scale = option('--scale', 70);
// --plain: no encryption (WAL and base backup compressed only), to see what decryption costs.
const plain = process.argv.includes('--plain');
const walMb = option('--wal-mb', 1024);
const inPlaceCount = process.argv.includes('--no-in-place') ? 0 : 3;
const log = (line: string) => console.log(line);
const SEGMENT = /^[0-9A-F]{24}$/;
const TASK_QUEUE = 'pgwarden-bench';

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
    const configFor = (
      c: { host: string; port: number; dataDir: string },
      repo: string,
      spool?: string,
      state?: StateAtT,
    ) => ({
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
      // pgwarden's verify step checks the state at T, as the benchmark checks the other recoveries.
      ...(state ? { verification: { checks: { bench: stateChecks(state) } } } : {}),
      worker: { host: 'bench' },
    });
    let pgbackrest: Pgbackrest | undefined;
    cluster = await startCluster({
      settings: {
        shared_buffers: "'256MB'",
        wal_level: 'replica',
        archive_mode: 'on',
        // pgwarden wal-push and pgBackRest's archive-push, both (the script is written in beforeStart).
        archive_command: `'${archiveBothScript(work)} %p %f'`,
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
        pgbackrest = await setUpPgbackrest({
          work,
          cluster: c,
          encrypt: !plain,
          push: `${process.execPath} ${cli} --config ${configFile} wal-push --cluster main`,
          owner: ids,
        });
      },
    });
    if (!pgbackrest) throw new Error('pgBackRest not set up');
    // At once: until the stanza exists, pgBackRest's archive-push fails and the archiver retries.
    await pgbackrest.createStanza();
    const secrets = { BENCH_PGPASSWORD: cluster.password, BENCH_PASSPHRASE: key.passphrase };
    await buildBenchDatabase(cluster, scale, log);

    log('base backups, one after the other: pgwarden baseBackup workflow, pgBackRest full, pg_basebackup -Ft -X none');
    worker = await startBuiltWorker(configFile, secrets, dist);
    connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });
    let t0 = process.hrtime.bigint();
    const base = (await client.workflow.execute('baseBackup', {
      taskQueue: TASK_QUEUE,
      workflowId: 'bench-base',
      args: [{ cluster: 'main', backupId: '20261122T030000Z' }],
    })) as BaseBackupWorkflowResult;
    const pgwardenBase = { seconds: since(t0), bytes: base.bytes };
    log(
      `  pgwarden: ${(base.bytes / 1e6).toFixed(0)} MB stored, ${base.startLsn} → ${base.stopLsn}, ${pgwardenBase.seconds.toFixed(1)} s`,
    );
    const pgbackrestBase = await pgbackrest.fullBackup();
    log(
      `  pgBackRest: full backup ${pgbackrestBase.label}, ${(pgbackrestBase.bytes / 1e6).toFixed(0)} MB stored, ${pgbackrestBase.seconds.toFixed(1)} s`,
    );
    const manualBase = join(work, 'manual-base');
    t0 = process.hrtime.bigint();
    await execa(
      join(PG_BIN, 'pg_basebackup'),
      ['-D', manualBase, '-Ft', '-X', 'none', '--checkpoint=fast', '--no-password'],
      { env: cluster.env() },
    );
    const baseTar = join(manualBase, 'base.tar');
    const manualBaseResult = { seconds: since(t0), bytes: (await stat(baseTar)).size };
    log(`  manual: base.tar ${(manualBaseResult.bytes / 1e6).toFixed(0)} MB, ${manualBaseResult.seconds.toFixed(1)} s`);

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
    // The state at T: the last writes before the final switch, so every recovery to the end of the archive has them.
    const state = await recordState(cluster);
    log(
      `  state at T: marker ${state.marker}, pgbench_history ${state.historyRows} rows, sum(bbalance) ${state.branchBalance}`,
    );
    t0 = process.hrtime.bigint();
    const lastWal = await switchAndArchive(cluster, 60 * 60_000);
    const replayBytes = await walSince(base.startLsn);
    log(
      `  archived through ${lastWal} (waited ${since(t0).toFixed(0)} s for the archiver); ${(replayBytes / 1048576).toFixed(0)} MB of WAL after the base backup's start`,
    );
    // Nothing may reach the archive after this: both sides replay exactly the same WAL.
    await asPostgres(join(PG_BIN, 'pg_ctl'), ['-D', cluster.dataDir, '-m', 'fast', '-w', 'stop']);
    log(
      `  live cluster stopped (the archive is final); archives: pgwarden ${((await duBytes(walDir)) / 1e6).toFixed(0)} MB, pgBackRest ${((await pgbackrest.archiveBytes()) / 1e6).toFixed(0)} MB`,
    );
    // pgwarden's verify step gets the checks of the state at T: a worker restarted on the config that has them.
    await writeFile(configFile, JSON.stringify(configFor(cluster, repository, spoolFor('spool'), state)));
    await worker.stop();
    worker = await startBuiltWorker(configFile, secrets, dist);

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

    const { walPushSyncMsP50, walPushMsP50 } = await timeWalPush({
      cli,
      env: cliEnv,
      plainWal,
      segments: archived.filter((n) => SEGMENT.test(n)),
      work,
      pushConfigFile,
      asyncPushConfigFile,
      asyncSpool: spoolFor('push-scratch-spool'),
      log,
    });

    type ManualRecovery = { seconds: number; extractSeconds: number; reachedLsn: string; redoDone: string };
    const manualRun = async (i: number): Promise<ManualRecovery> => {
      const who = `manual recovery ${i + 1}`;
      const dir = join(work, `manual-${i}`);
      const data = join(dir, 'data');
      await mkdir(data, { recursive: true });
      await toPostgres(dir);
      const port = await freePort();
      const started = process.hrtime.bigint();
      try {
        await execa('tar', ['-xf', baseTar, '-C', data]);
        if (ids) await execa('chown', ['-R', `${ids.uid}:${ids.gid}`, data]);
        await chmod(data, 0o700);
        const extractSeconds = since(started);
        await writeFile(
          join(data, 'postgresql.auto.conf'),
          `\n# manual point-in-time recovery\nrestore_command = 'cp ${plainWal}/%f %p'\nrecovery_target_action = promote\n`,
          { flag: 'a' },
        );
        await writeFile(join(data, 'recovery.signal'), '');
        await toPostgres(join(data, 'recovery.signal'));
        const r = await startUntilPromoted({ data, dir, port, password: cluster!.password, started, who });
        await checkState(port, cluster!.password, state, who);
        return { ...r, extractSeconds };
      } finally {
        await stopServer(data);
        await removeScratch(dir);
      }
    };
    const pgwardenRun = async (
      i: number,
    ): Promise<{ seconds: number; result: PointInTimeRecoveryResult; timeline: string }> => {
      const started = process.hrtime.bigint();
      const result = (await client.workflow.execute('pointInTimeRecovery', {
        taskQueue: TASK_QUEUE,
        workflowId: `bench-pitr-${i}`,
        args: [{ cluster: 'main', target: { latest: true }, mode: 'rehearsal' }],
      })) as PointInTimeRecoveryResult;
      const seconds = since(started);
      // Its verify step ran the checks of the state at T (a failed one fails the run): the activity's result says which.
      const history = await client.workflow.getHandle(`bench-pitr-${i}`).fetchHistory();
      const checked = (history.events ?? [])
        .flatMap((e) => e.activityTaskCompletedEventAttributes?.result?.payloads ?? [])
        .map((p) => {
          try {
            return JSON.parse(Buffer.from(p.data ?? []).toString()) as { checks?: unknown[] };
          } catch {
            return undefined;
          }
        })
        .find((r) => Array.isArray(r?.checks));
      if (checked?.checks?.length !== stateChecks(state).length)
        throw new Error(`pgwarden recovery ${i + 1}: its verify step did not run the checks of the state at T`);
      return { seconds, result, timeline: activityTimeline(history.events ?? []) };
    };

    log('recovery to the last commit, median of 3 each (manual, pgBackRest and pgwarden runs alternate)');
    const manualRuns: ManualRecovery[] = [];
    const pgbackrestRuns: PgbackrestRecovery[] = [];
    const pgwardenRuns: { seconds: number; result: PointInTimeRecoveryResult; timeline: string }[] = [];
    const steps = (r: PointInTimeRecoveryResult) => r.steps.map((s) => `${s.step} ${s.seconds.toFixed(1)}`).join(', ');
    for (let i = 0; i < 3; i++) {
      const m = await manualRun(i);
      manualRuns.push(m);
      log(
        `  manual #${i + 1}: ${m.seconds.toFixed(1)} s (extract ${m.extractSeconds.toFixed(1)}, then replay until promoted; redo done at ${m.redoDone}, reached ${m.reachedLsn}); state at T checked`,
      );
      const b = await pgbackrest.recover(i, cluster.password, state);
      pgbackrestRuns.push(b);
      log(
        `  pgBackRest #${i + 1}: ${b.seconds.toFixed(1)} s (restore ${b.restoreSeconds.toFixed(1)}, then replay until promoted; redo done at ${b.redoDone}, reached ${b.reachedLsn}); state at T checked`,
      );
      const run = await pgwardenRun(i);
      pgwardenRuns.push(run);
      log(
        `  pgwarden #${i + 1}: ${run.seconds.toFixed(1)} s (${steps(run.result)}; recoverSeconds ${run.result.recovery?.recoverSeconds.toFixed(1)}, ` +
          `timeline ${run.result.recovery?.timeline}, reached ${run.result.recovery?.reachedLsn}); state at T checked by its verify step`,
      );
      log(`    its activities (seconds since the run started): ${run.timeline}`);
    }
    const manualSeconds = median(manualRuns, (r) => r.seconds).seconds;
    const pgbackrestSeconds = median(pgbackrestRuns, (r) => r.seconds).seconds;
    const pgwarden = median(pgwardenRuns, (r) => r.seconds);
    log(`manual:   ${manualSeconds.toFixed(1)} s (runs: ${manualRuns.map((r) => r.seconds.toFixed(1)).join(', ')})`);
    log(
      `pgBackRest: ${pgbackrestSeconds.toFixed(1)} s (runs: ${pgbackrestRuns.map((r) => r.seconds.toFixed(1)).join(', ')}); ` +
        'its in-place downtime is the same: the cluster is down during restore and replay',
    );
    log(
      `pgwarden: ${pgwarden.seconds.toFixed(1)} s (runs: ${pgwardenRuns.map((r) => r.seconds.toFixed(1)).join(', ')}); median run: ${steps(pgwarden.result)}`,
    );
    if (pgwarden.result.recovery?.stoppedAt) log(`  ${pgwarden.result.recovery.stoppedAt}`);

    log(
      inPlaceCount
        ? `pgwarden's in-place downtime: ${inPlaceCount} in-place recoveries of the live cluster to the end of the archive, approve → done`
        : "pgwarden's in-place downtime: not measured (--no-in-place)",
    );
    await pgbackrest.stopArchiving();
    const inPlace = await inPlaceRuns({ client, cluster, state, taskQueue: TASK_QUEUE, runs: inPlaceCount, log });
    const downtime = inPlace.length ? median(inPlace, (r) => r.downtimeSeconds) : undefined;
    if (downtime)
      log(
        `pgwarden in place: ${downtime.downtimeSeconds.toFixed(1)} s approve → done (runs: ${inPlace.map((r) => r.downtimeSeconds.toFixed(1)).join(', ')}) ` +
          `against pgBackRest's ${pgbackrestSeconds.toFixed(1)} s: ${(downtime.downtimeSeconds / pgbackrestSeconds).toFixed(2)}×`,
      );

    const round = (n: number, d = 2) => Number(n.toFixed(d));
    console.log(
      JSON.stringify({
        bench: plain ? 'pitr-plain' : 'pitr',
        manualSeconds: round(manualSeconds),
        pgwardenSeconds: round(pgwarden.seconds),
        ratio: round(pgwarden.seconds / manualSeconds),
        pgbackrestSeconds: round(pgbackrestSeconds),
        ratioVsPgbackrest: round(pgwarden.seconds / pgbackrestSeconds),
        // pgwarden's in-place approve → done (null with --no-in-place); pgBackRest's is its restore + replay.
        downtimeSeconds: downtime ? round(downtime.downtimeSeconds) : null,
        pgbackrestDowntimeSeconds: round(pgbackrestSeconds),
        downtimeRatioVsPgbackrest: downtime ? round(downtime.downtimeSeconds / pgbackrestSeconds) : null,
        beforeApprovalSeconds: downtime ? round(downtime.beforeApprovalSeconds) : null,
        manualBaseSeconds: round(manualBaseResult.seconds),
        manualBaseBytes: manualBaseResult.bytes,
        pgbackrestBaseSeconds: round(pgbackrestBase.seconds),
        pgbackrestBaseBytes: pgbackrestBase.bytes,
        pgwardenBaseSeconds: round(pgwardenBase.seconds),
        pgwardenBaseBytes: pgwardenBase.bytes,
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

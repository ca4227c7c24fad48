// npm run bench:backup — fullBackup against the floor, plain pg_dump, and the runbook pipeline.
//
// Builds a ~1 GB pgbench database made realistic (pgbench_accounts.filler = 84 random hex
// characters, so rows compress about 2:1 like real tables), then measures wall time, peak RSS and
// stored bytes of:
//   floor     pg_dump -Fc -Z0 > /dev/null            (reading the data out, nothing else)
//   pgDump    pg_dump -Fc > /dev/null                (pg_dump's own single-threaded gzip)
//   runbook   pg_dump -Fc -Z9 -f f; gzip -9 f; sha256sum f.gz; gpg --encrypt f.gz   (a pass each)
//   pgwarden  the fullBackup workflow on a real worker process (built code, prebuilt workflow
//             bundle: what production runs) and the Temporal dev server
// floor and pgwarden are the median of three runs (the machine's cores are shared).
// Prints the figures and, last, one JSON line. Options: --scale N (default 70).
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { Client, Connection } from '@temporalio/client';
import { startDevServer } from '../../src/worker/devServer.js';
import { startCluster } from '../../test/helpers/postgres.js';
import { createTestKey } from '../../test/helpers/gpg.js';
import { freePort } from '../../test/helpers/ports.js';
import { PG_BIN } from '../../test/helpers/require.js';
import { buildBenchDatabase } from './database.js';
import { median, startBuiltWorker } from './worker.js';
import { writeFile } from 'node:fs/promises';
import type { FullBackupResult } from '../../src/workflows/fullBackup.js';

const scale = Number(process.argv[process.argv.indexOf('--scale') + 1] ?? 70) || 70;
const log = (line: string) => console.log(line);

interface Run {
  seconds: number;
  peakRssMb: number;
  bytes?: number;
}

/** Runs a shell pipeline under GNU time; peak RSS is the largest of its processes. */
async function timed(script: string, env: Record<string, string>): Promise<Run> {
  const started = process.hrtime.bigint();
  const rssFile = join(tmpdir(), `pgwarden-bench-rss-${process.pid}`);
  // Each stage reports its own max RSS; the pipeline's peak is the largest stage.
  const wrapped = script.replace(/\{T\}/g, `/usr/bin/time -a -o ${rssFile} -f %M`);
  await writeFile(rssFile, '');
  const { stdout } = await execa('bash', ['-o', 'pipefail', '-c', wrapped], { env, extendEnv: true });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const kb = (await readFile(rssFile, 'utf8')).split('\n').filter(Boolean).map(Number);
  await rm(rssFile, { force: true });
  const bytes = Number(stdout.trim().split('\n').at(-1));
  return { seconds, peakRssMb: Math.max(...kb) / 1024, bytes: Number.isFinite(bytes) ? bytes : undefined };
}

async function main() {
  const work = await mkdtemp(join(tmpdir(), 'pgwarden-bench-'));
  const [cluster, key] = await Promise.all([
    startCluster({ settings: { shared_buffers: "'256MB'" } }),
    createTestKey(),
  ]);
  try {
    const env = cluster.env('bench');
    const dbBytes = await buildBenchDatabase(cluster, scale, log);

    const pgDump = join(PG_BIN, 'pg_dump');
    // Warm the cache the same way for everyone: one untimed read.
    await timed(`${pgDump} -Fc -Z0 > /dev/null`, env);
    // This machine shares its cores: the fast measurements are the median of three runs.
    log('floor: pg_dump -Fc -Z0 > /dev/null (median of 3)');
    const floors: Run[] = [];
    for (let i = 0; i < 3; i++) floors.push(await timed(`{T} ${pgDump} -Fc -Z0 | wc -c`, env));
    const floor = median(floors, (r) => r.seconds);
    log(`  ${floor.seconds.toFixed(1)} s (runs: ${floors.map((r) => r.seconds.toFixed(1)).join(', ')})`);
    log('pg_dump -Fc > /dev/null (built-in gzip)');
    const dump = await timed(`{T} ${pgDump} -Fc | wc -c`, env);
    log(`  ${dump.seconds.toFixed(1)} s, ${(dump.bytes! / 1e6).toFixed(0)} MB`);

    log('runbook: pg_dump -Fc -Z9 -f; gzip -9; sha256sum; gpg --encrypt');
    const f = join(work, 'runbook.dump');
    const gpgHome = key.home;
    const runbook = await timed(
      `{T} ${pgDump} -Fc -Z9 -f ${f} && {T} gzip -9 ${f} && {T} sha256sum ${f}.gz > ${f}.gz.sha256 && ` +
        `{T} gpg --homedir ${gpgHome} --batch --yes --trust-model always -r ${key.fingerprint} -o ${f}.gz.gpg --encrypt ${f}.gz && stat -c %s ${f}.gz.gpg`,
      env,
    );
    log(`  ${runbook.seconds.toFixed(1)} s, ${(runbook.bytes! / 1e6).toFixed(0)} MB`);
    await rm(join(work, 'runbook.dump.gz'), { force: true });

    log('pgwarden: fullBackup workflow on a worker process (median of 3)');
    const server = await startDevServer({ port: await freePort() });
    const repository = join(work, 'repo');
    const configFile = join(work, 'pgwarden.config.json');
    await writeFile(
      configFile,
      JSON.stringify({
        temporal: { address: server.address, taskQueue: 'pgwarden-bench' },
        clusters: {
          main: { host: cluster.host, port: cluster.port, user: 'postgres', passwordEnv: 'BENCH_PGPASSWORD' },
        },
        repositories: { local: { type: 'local', path: repository } },
        encryption: { recipients: [key.publicKeyFile] },
        worker: { host: 'bench' },
      }),
    );
    const worker = await startBuiltWorker(configFile, { BENCH_PGPASSWORD: cluster.password });
    const connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });
    const runs: { seconds: number; result: FullBackupResult }[] = [];
    for (let i = 0; i < 3; i++) {
      const started = process.hrtime.bigint();
      const result = (await client.workflow.execute('fullBackup', {
        taskQueue: 'pgwarden-bench',
        workflowId: `bench-${i}`,
        args: [{ cluster: 'main', database: 'bench', backupId: `20261122T02000${i}Z` }],
      })) as FullBackupResult;
      runs.push({ seconds: Number(process.hrtime.bigint() - started) / 1e9, result });
    }
    const { seconds: pgwardenSeconds, result } = median(runs, (r) => r.seconds);
    const workerRssMb = (await worker.memoryKb('VmHWM')) / 1024;
    await worker.stop();
    await connection.close();
    await server.stop();
    const b = result.backups[0]!;
    const dumpArtifact = (await stat(join(b.path, 'dump.pgdump.zst.gpg'))).size;
    log(
      `  ${pgwardenSeconds.toFixed(1)} s (runs: ${runs.map((r) => r.seconds.toFixed(1)).join(', ')}), ${(dumpArtifact / 1e6).toFixed(0)} MB, worker peak RSS ${workerRssMb.toFixed(0)} MB`,
    );

    const round = (n: number, d = 2) => Number(n.toFixed(d));
    console.log(
      JSON.stringify({
        bench: 'fullBackup',
        dbBytes,
        floorSeconds: round(floor.seconds),
        pgDumpSeconds: round(dump.seconds),
        runbookSeconds: round(runbook.seconds),
        pgwardenSeconds: round(pgwardenSeconds),
        pgDumpBytes: dump.bytes,
        pgwardenBytes: dumpArtifact,
        ratioVsFloor: round(pgwardenSeconds / floor.seconds),
        ratioVsPgDump: round(pgwardenSeconds / dump.seconds),
        ratioVsRunbook: round(pgwardenSeconds / runbook.seconds),
        peakRssMb: round(workerRssMb, 0),
      }),
    );
  } finally {
    await Promise.all([cluster.stop(), key.remove(), rm(work, { recursive: true, force: true })]);
  }
}

main().catch((err: unknown) => {
  console.error(`bench: ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
});

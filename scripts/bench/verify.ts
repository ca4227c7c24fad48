// npm run bench:verify — verifyBackup against a plain restore of the same database.
//   pgRestore  pg_restore of an unencrypted `pg_dump -Fc` file into an empty database
// Both are the median of three runs; peak RSS is the worker's over the three verifications.
//   pgwarden   the verifyBackup workflow on a built worker process: sha256 of the stored bytes,
//              gpg --decrypt → zstd -d → pg_restore into pgwarden_verify_<id>, row counts
//              compared with the manifest, the temporary database dropped
// Prints the figures and, last, one JSON line. Options: --scale N (default 70).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { Client, Connection } from '@temporalio/client';
import { startDevServer } from '../../src/worker/devServer.js';
import type { VerifyBackupResult } from '../../src/workflows/verifyBackup.js';
import { createTestKey } from '../../test/helpers/gpg.js';
import { startCluster } from '../../test/helpers/postgres.js';
import { freePort } from '../../test/helpers/ports.js';
import { PG_BIN } from '../../test/helpers/require.js';
import { buildBenchDatabase } from './database.js';
import { median, startBuiltWorker } from './worker.js';

const scale = Number(process.argv[process.argv.indexOf('--scale') + 1] ?? 70) || 70;
const log = (line: string) => console.log(line);

async function main() {
  const work = await mkdtemp(join(tmpdir(), 'pgwarden-bench-verify-'));
  const [cluster, key] = await Promise.all([
    startCluster({ settings: { shared_buffers: "'256MB'" } }),
    createTestKey(),
  ]);
  try {
    await buildBenchDatabase(cluster, scale, log);
    const file = join(work, 'bench.dump');
    await execa(join(PG_BIN, 'pg_dump'), ['-Fc', '-f', file], { env: cluster.env('bench') });
    // This machine shares its cores: both sides are the median of three runs.
    log('pg_restore of pg_dump -Fc into an empty database (median of 3)');
    const plainRuns: number[] = [];
    for (let i = 0; i < 3; i++) {
      await cluster.query('CREATE DATABASE plain_restore');
      const started = process.hrtime.bigint();
      await execa(join(PG_BIN, 'pg_restore'), ['--exit-on-error', '-d', 'plain_restore', file], {
        env: cluster.env('plain_restore'),
      });
      plainRuns.push(Number(process.hrtime.bigint() - started) / 1e9);
      await cluster.query('DROP DATABASE plain_restore');
    }
    const pgRestoreSeconds = median(plainRuns, (r) => r);
    log(`  ${pgRestoreSeconds.toFixed(1)} s (runs: ${plainRuns.map((r) => r.toFixed(1)).join(', ')})`);
    await rm(file);

    const server = await startDevServer({ port: await freePort() });
    const configFile = join(work, 'pgwarden.config.json');
    await writeFile(
      configFile,
      JSON.stringify({
        temporal: { address: server.address, taskQueue: 'pgwarden-bench' },
        clusters: {
          main: { host: cluster.host, port: cluster.port, user: 'postgres', passwordEnv: 'BENCH_PGPASSWORD' },
        },
        repositories: { local: { type: 'local', path: join(work, 'repo') } },
        encryption: {
          recipients: [key.publicKeyFile],
          privateKeyFile: key.privateKeyFile,
          passphraseEnv: 'BENCH_PASSPHRASE',
        },
        worker: { host: 'bench' },
      }),
    );
    const worker = await startBuiltWorker(configFile, {
      BENCH_PGPASSWORD: cluster.password,
      BENCH_PASSPHRASE: key.passphrase,
    });
    const connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });
    log('pgwarden: fullBackup (untimed), then verifyBackup (median of 3)');
    await client.workflow.execute('fullBackup', {
      taskQueue: 'pgwarden-bench',
      workflowId: 'bench-backup',
      args: [{ cluster: 'main', database: 'bench', backupId: '20261122T020000Z' }],
    });
    const before = await worker.memoryKb('VmRSS');
    let peakKb = before;
    const sampler = setInterval(() => {
      worker
        .memoryKb('VmRSS')
        .then((kb) => (peakKb = Math.max(peakKb, kb)))
        .catch(() => undefined);
    }, 100);
    const runs: number[] = [];
    let result!: VerifyBackupResult;
    for (let i = 0; i < 3; i++) {
      const started = process.hrtime.bigint();
      result = (await client.workflow.execute('verifyBackup', {
        taskQueue: 'pgwarden-bench',
        workflowId: `bench-verify-${i}`,
        args: [{ cluster: 'main', database: 'bench', backupId: '20261122T020000Z' }],
      })) as VerifyBackupResult;
      runs.push(Number(process.hrtime.bigint() - started) / 1e9);
    }
    const pgwardenSeconds = median(runs, (r) => r);
    clearInterval(sampler);
    log(
      `  ${pgwardenSeconds.toFixed(1)} s (runs: ${runs.map((r) => r.toFixed(1)).join(', ')}; last restore step ${result.restoreSeconds.toFixed(1)} s), ${result.rows} rows checked, ` +
        `worker peak RSS ${(peakKb / 1024).toFixed(0)} MB (${(before / 1024).toFixed(0)} MB when the verify started, after the backup)`,
    );
    await worker.stop();
    await connection.close();
    await server.stop();
    const round = (n: number, d = 2) => Number(n.toFixed(d));
    console.log(
      JSON.stringify({
        bench: 'verifyBackup',
        pgRestoreSeconds: round(pgRestoreSeconds),
        pgwardenSeconds: round(pgwardenSeconds),
        ratio: round(pgwardenSeconds / pgRestoreSeconds),
        peakRssMb: round(peakKb / 1024, 0),
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

// npm run demo — pgwarden on one machine, no configuration: the Temporal dev server (with UI), a
// scratch PostgreSQL 15 with sample data, a worker, and a fullBackup run end to end; then a
// by-hand restore of the backup with stock gpg, zstd and pg_restore. Cleans up and exits 0.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { parseConfig } from '../src/config/index.js';
import { startDevServer } from '../src/worker/devServer.js';
import { createWorkers } from '../src/worker/worker.js';
import { formatBytes, formatDuration } from '../src/cli/format.js';
import { parseLogicalManifest } from '../src/lib/manifest.js';
import type { FullBackupResult } from '../src/workflows/fullBackup.js';
import { createSampleDatabase } from '../test/helpers/data.js';
import { createTestKey } from '../test/helpers/gpg.js';
import { startCluster } from '../test/helpers/postgres.js';
import { freePort } from '../test/helpers/ports.js';
import { restoreWithStockTools, rowCounts } from '../test/helpers/restore.js';
import { readFile } from 'node:fs/promises';

const t0 = Date.now();
const say = (line: string) => console.log(`[${formatDuration((Date.now() - t0) / 1000).padStart(6)}] ${line}`);

async function main() {
  const work = await mkdtemp(join(tmpdir(), 'pgwarden-demo-'));
  say('starting the Temporal dev server, a scratch PostgreSQL 15 and a test OpenPGP key');
  const [server, cluster, key] = await Promise.all([
    Promise.all([freePort(), freePort()]).then(([port, uiPort]) => startDevServer({ port, uiPort })),
    startCluster(),
    createTestKey(),
  ]);
  const cleanups = [() => server.stop(), () => cluster.stop(), () => key.remove(), () => rm(work, { recursive: true, force: true })];
  try {
    say(`Temporal UI: ${server.uiAddress}  (workflows appear there as they run)`);
    say(`PostgreSQL 15 on ${cluster.host}:${cluster.port}; creating database "app" with sample data`);
    await createSampleDatabase(cluster, 'app');

    const config = parseConfig({
      temporal: { address: server.address, taskQueue: 'pgwarden' },
      clusters: { main: { host: cluster.host, port: cluster.port, user: 'postgres', passwordEnv: 'DEMO_PGPASSWORD' } },
      repositories: { local: { type: 'local', path: join(work, 'repository') } },
      encryption: { recipients: [key.publicKeyFile] },
      worker: { host: 'demo' },
    });
    await writeFile(join(work, 'pgwarden.config.json'), JSON.stringify(config, null, 2));
    const nativeConnection = await NativeConnection.connect({ address: server.address });
    const workers = await createWorkers({ config, connection: nativeConnection, env: { ...process.env, DEMO_PGPASSWORD: cluster.password } });
    const running = Promise.all(workers.map((w) => w.run()));
    say('worker polling queues pgwarden and pgwarden@demo');

    const connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });
    const workflowId = 'pgwarden/main/app/full/demo';
    say(`fullBackup ${workflowId}: preflight → dump → commit`);
    const started = Date.now();
    const result = (await client.workflow.execute('fullBackup', {
      taskQueue: 'pgwarden',
      workflowId,
      args: [{ cluster: 'main', database: 'app' }],
    })) as FullBackupResult;
    const b = result.backups[0]!;
    say(`backup ${b.backupId}: ${formatBytes(b.bytes)} stored (zstd + OpenPGP), ${b.tables} tables, ${b.rows} rows, ${formatDuration((Date.now() - started) / 1000)}`);
    say(`  ${b.path}`);

    say('restoring it by hand: gpg --decrypt dump.pgdump.zst.gpg | zstd -d | pg_restore -d app_restored');
    const manifest = parseLogicalManifest(await readFile(join(b.path, 'manifest.json'), 'utf8'));
    await restoreWithStockTools(cluster, key, b.path, manifest, 'app_restored');
    const counts = await rowCounts(cluster, 'app_restored', manifest.tables);
    console.log('');
    console.log('  table                    manifest rows   restored rows');
    for (const [i, t] of manifest.tables.entries()) {
      console.log(`  ${`${t.schema}.${t.name}`.padEnd(24)} ${String(t.rows).padStart(13)}   ${String(counts[i]!.rows).padStart(13)}`);
    }
    console.log('');
    const ok = counts.every((c, i) => c.rows === manifest.tables[i]!.rows);
    say(ok ? 'every table restored with the row count the manifest recorded' : 'ROW COUNTS DIFFER');
    for (const w of workers) w.shutdown();
    await running;
    await connection.close();
    await nativeConnection.close();
    if (!ok) process.exitCode = 1;
  } finally {
    for (const c of cleanups) await c().catch(() => undefined);
    say('cleaned up');
  }
}

main().catch((err: unknown) => {
  console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

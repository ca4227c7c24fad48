// The benchmarks' database: pgbench at the given scale (70 ≈ 1.1 GB), with pgbench_accounts.filler
// made of 84 random hex characters so rows compress about 2:1 like real tables (stock pgbench rows
// compress about 20:1 and hide the cost of every stage after compression).
import { join } from 'node:path';
import { execa } from 'execa';
import type { TestCluster } from '../../test/helpers/postgres.js';
import { PG_BIN } from '../../test/helpers/require.js';

/** Creates database `bench` and returns its size in bytes. */
export async function buildBenchDatabase(
  cluster: TestCluster,
  scale: number,
  log: (line: string) => void,
): Promise<number> {
  const env = cluster.env('bench');
  log(`building the benchmark database (pgbench scale ${scale}, random hex filler)...`);
  const t0 = Date.now();
  await cluster.query('CREATE DATABASE bench');
  await execa(join(PG_BIN, 'pgbench'), ['-i', '-s', String(scale), '-I', 'dt', '-q'], { env });
  await cluster.query(
    `INSERT INTO pgbench_branches SELECT b, 0, '' FROM generate_series(1, ${scale}) b;
     INSERT INTO pgbench_tellers SELECT t, (t - 1) / 10 + 1, 0, '' FROM generate_series(1, ${scale * 10}) t;
     INSERT INTO pgbench_accounts
       SELECT a, (a - 1) / 100000 + 1, 0, substr(md5(a::text || random()::text) || md5(random()::text) || md5(random()::text), 1, 84)
         FROM generate_series(1, ${scale * 100000}) a;`,
    'bench',
  );
  await execa(join(PG_BIN, 'pgbench'), ['-i', '-s', String(scale), '-I', 'vp', '-q'], { env });
  await cluster.query('CHECKPOINT');
  const [row] = await cluster.query<{ size: string }>(`SELECT pg_database_size('bench') AS size`);
  const dbBytes = Number(row!.size);
  log(`  ${(dbBytes / 1e9).toFixed(2)} GB in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return dbBytes;
}

// Restores a pgwarden backup the way an operator would by hand: gpg --decrypt | zstd -d | pg_restore.
import { join } from 'node:path';
import { execa } from 'execa';
import type { LogicalManifest } from '../../src/lib/manifest.js';
import type { TestKey } from './gpg.js';
import type { TestCluster } from './postgres.js';
import { PG_BIN } from './require.js';

export async function decryptArtifact(key: TestKey, file: string): Promise<Buffer> {
  const gpg = execa('gpg', key.decryptArgs(file), { encoding: 'buffer', maxBuffer: 1 << 30 });
  const zstd = gpg.pipe('zstd', ['-d', '-c'], { encoding: 'buffer', maxBuffer: 1 << 30 });
  return Buffer.from((await zstd).stdout);
}

export async function restoreWithStockTools(
  cluster: TestCluster,
  key: TestKey,
  backupDir: string,
  manifest: LogicalManifest,
  targetDatabase: string,
): Promise<void> {
  await cluster.query(`CREATE DATABASE ${targetDatabase}`);
  const dump = manifest.artifacts.find((a) => a.role === 'dump')!;
  await execa('gpg', key.decryptArgs(join(backupDir, dump.name)))
    .pipe('zstd', ['-d', '-c'])
    .pipe(join(PG_BIN, 'pg_restore'), ['--no-owner', '--exit-on-error', '--dbname', targetDatabase], {
      env: cluster.env(targetDatabase),
    });
}

export async function rowCounts(cluster: TestCluster, database: string, tables: { schema: string; name: string }[]) {
  const out: { schema: string; name: string; rows: number }[] = [];
  for (const t of tables) {
    const [r] = await cluster.query<{ n: string }>(`SELECT count(*) AS n FROM "${t.schema}"."${t.name}"`, database);
    out.push({ ...t, rows: Number(r!.n) });
  }
  return out;
}

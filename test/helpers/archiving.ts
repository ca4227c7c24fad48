// A PostgreSQL cluster that archives its WAL with `pgwarden wal-push` into a pgwarden repository,
// as an operator would set it up: archive_command runs the real CLI as the postgres user.
import { chmod, chown, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Config } from '../../src/config/index.js';
import { testConfig } from './config.js';
import type { TestKey } from './gpg.js';
import { startCluster, type TestCluster } from './postgres.js';

export const ROOT = join(import.meta.dirname, '../..');
export const PGWARDEN = join(ROOT, 'bin/pgwarden');

export interface ArchivingSetup {
  cluster: TestCluster;
  dir: string;
  repository: string;
  config: Config;
  configFile: string;
  remove(): Promise<void>;
}

type ArchivingOptions = { taskQueue: string; key?: TestKey; extra?: Parameters<typeof testConfig>[0]['extra'] };

export async function startArchivingCluster(o: ArchivingOptions): Promise<ArchivingSetup> {
  const dir = await mkdtemp(join(tmpdir(), 'pgwarden-archive-'));
  // A set-up that fails (missing binaries, no postgres user) leaves no directory behind.
  return archivingCluster(dir, o).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
}

async function archivingCluster(dir: string, o: ArchivingOptions): Promise<ArchivingSetup> {
  await chmod(dir, 0o755);
  const repository = join(dir, 'repo');
  const walDir = join(repository, 'main', 'wal');
  await mkdir(walDir, { recursive: true });
  const configFile = join(dir, 'pgwarden.config.json');
  // wal-push runs as postgres: it reads the public key and the config, and writes the WAL archive.
  let key = o.key;
  if (key) {
    const publicKeyFile = join(dir, 'backup.pub.asc');
    await copyFile(key.publicKeyFile, publicKeyFile);
    await chmod(publicKeyFile, 0o644);
    key = { ...key, publicKeyFile };
  }
  if (process.getuid?.() === 0) {
    const uid = Number((await execa('id', ['-u', 'postgres'])).stdout);
    const gid = Number((await execa('id', ['-g', 'postgres'])).stdout);
    for (const d of [repository, join(repository, 'main'), walDir]) await chown(d, uid, gid);
  }
  const cluster = await startCluster({
    settings: {
      wal_level: 'replica',
      archive_mode: 'on',
      // bin/pgwarden prefers a built dist/ when one exists; the tests run the sources they test.
      archive_command: `'PGWARDEN_FROM_SOURCE=1 ${PGWARDEN} --config ${configFile} wal-push --cluster main %p %f'`,
      full_page_writes: 'on',
      max_wal_senders: '4',
    },
    beforeStart: async (c) => {
      const config = testConfig({ cluster: c, repository, taskQueue: o.taskQueue, key, extra: o.extra });
      config.clusters.main!.hostQueue = `pgwarden@${o.taskQueue}`;
      await writeFile(configFile, JSON.stringify(config));
      await chmod(configFile, 0o644);
    },
  });
  const config = testConfig({ cluster, repository, taskQueue: o.taskQueue, key, extra: o.extra });
  config.clusters.main!.hostQueue = `pgwarden@${o.taskQueue}`;
  return {
    cluster,
    dir,
    repository,
    config,
    configFile,
    async remove() {
      await cluster.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Forces the current WAL segment into the archive and waits until it is there. */
export async function switchAndArchive(cluster: TestCluster, timeoutMs = 60_000): Promise<string> {
  const wal = (await cluster.query<{ wal: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS wal'))[0]!.wal;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await cluster.query<{ last: string | null; failed: string }>(
      'SELECT last_archived_wal AS last, failed_count::text AS failed FROM pg_stat_archiver',
    );
    if (row!.last && row!.last >= wal) return wal;
    if (Date.now() > deadline)
      throw new Error(`${wal} not archived after ${timeoutMs} ms (last ${row!.last}, failed ${row!.failed})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

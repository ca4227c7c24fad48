// An ephemeral PostgreSQL 15 cluster: initdb into a temp dir (as the postgres user when running as
// root: initdb and pg_ctl refuse root), password auth on 127.0.0.1, a free port, always torn down.
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import pg from 'pg';
import { freePort } from './ports.js';
import { PG_BIN, requireBinary } from './require.js';

export interface TestCluster {
  host: string;
  port: number;
  user: string;
  password: string;
  dataDir: string;
  /** Run SQL and return the rows. */
  query<T extends pg.QueryResultRow = Record<string, unknown>>(sql: string, database?: string): Promise<T[]>;
  /** libpq environment for psql, pg_restore, ... */
  env(database?: string): Record<string, string>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** Extra postgresql.conf settings, e.g. archiving. */
  settings?: Record<string, string>;
  /** Runs after the port is chosen, before the server starts (e.g. to write a config that names it). */
  beforeStart?: (cluster: Pick<TestCluster, 'host' | 'port' | 'user' | 'password' | 'dataDir'>) => Promise<void>;
}

const isRoot = process.getuid?.() === 0;

async function asPostgres(cmd: string, args: string[]): Promise<void> {
  if (isRoot) await execa('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdin: 'ignore' });
  else await execa(cmd, args, { stdin: 'ignore' });
}

export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const initdb = requireBinary(join(PG_BIN, 'initdb'), 'PostgreSQL 15 initdb');
  const pgCtl = requireBinary(join(PG_BIN, 'pg_ctl'), 'PostgreSQL 15 pg_ctl');
  const base = await mkdtemp(join(tmpdir(), 'pgwarden-pg-'));
  // A cluster that fails to start leaves nothing behind: no server, no directory.
  return createCluster(base, pgCtl, initdb, options).catch(async (err: unknown) => {
    await asPostgres(pgCtl, ['-D', join(base, 'data'), '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    await rm(base, { recursive: true, force: true });
    throw err;
  });
}

async function createCluster(
  base: string,
  pgCtl: string,
  initdb: string,
  options: ClusterOptions,
): Promise<TestCluster> {
  const dataDir = join(base, 'data');
  const password = `pw-${randomBytes(12).toString('hex')}`;
  const pwfile = join(base, 'pwfile');
  await writeFile(pwfile, password + '\n', { mode: 0o600 });
  if (isRoot) {
    await chmod(base, 0o755);
    const { stdout } = await execa('id', ['-u', 'postgres']);
    const { stdout: gid } = await execa('id', ['-g', 'postgres']);
    await chown(base, Number(stdout), Number(gid));
    await chown(pwfile, Number(stdout), Number(gid));
  }
  await asPostgres(initdb, [
    '-D',
    dataDir,
    '-U',
    'postgres',
    `--pwfile=${pwfile}`,
    '--auth-host=scram-sha-256',
    '--auth-local=trust',
    '-E',
    'UTF8',
    '--locale=C',
    '--no-sync',
    '--no-instructions',
  ]);
  await rm(pwfile);
  const port = await freePort();
  const settings: Record<string, string> = {
    listen_addresses: "'127.0.0.1'",
    port: String(port),
    unix_socket_directories: `'${base}'`,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    shared_buffers: "'64MB'",
    max_wal_size: "'1GB'",
    ...options.settings,
  };
  await writeFile(
    join(dataDir, 'postgresql.auto.conf'),
    Object.entries(settings)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n') + '\n',
  );
  if (isRoot) await execa('chown', ['postgres:postgres', join(dataDir, 'postgresql.auto.conf')]);
  await options.beforeStart?.({ host: '127.0.0.1', port, user: 'postgres', password, dataDir });
  await asPostgres(pgCtl, ['-D', dataDir, '-l', join(base, 'server.log'), '-w', '-t', '60', 'start']);

  const connect = async (database: string) => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database });
    await client.connect();
    return client;
  };
  let stopped = false;
  return {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    dataDir,
    async query<T extends pg.QueryResultRow>(sql: string, database = 'postgres') {
      const client = await connect(database);
      try {
        return (await client.query<T>(sql)).rows;
      } finally {
        await client.end();
      }
    },
    env(database = 'postgres') {
      return {
        PGHOST: '127.0.0.1',
        PGPORT: String(port),
        PGUSER: 'postgres',
        PGPASSWORD: password,
        PGDATABASE: database,
      };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await asPostgres(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      await rm(base, { recursive: true, force: true });
    },
  };
}

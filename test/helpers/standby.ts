// A real streaming standby of a test primary (startCluster): `pg_basebackup -R -X stream` as the
// postgres user into a new data directory, a free port, started, and waited for until the
// primary's pg_stat_replication shows it streaming under its name (its application_name).
import { appendFile, chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { freePort } from './ports.js';
import type { TestCluster } from './postgres.js';
import { PG_BIN, requireBinary } from './require.js';

export interface TestStandby {
  name: string;
  host: string;
  port: number;
  dataDir: string;
  /** Run SQL on the standby (read-only, but pg_wal_replay_pause() and friends work). */
  query<T extends pg.QueryResultRow = Record<string, unknown>>(sql: string): Promise<T[]>;
  /** Stop the server (immediate), keeping its directory; `start` brings it back. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stop it and remove everything. */
  remove(): Promise<void>;
}

const isRoot = process.getuid?.() === 0;

async function asPostgres(cmd: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  const argv = isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  await execa(argv[0] as string, argv[1] as string[], { stdin: 'ignore', env });
}

/** Until the primary lists `name` streaming (or `timeoutMs` passes: then it throws). */
export async function waitStreaming(primary: TestCluster, name: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const rows = await primary.query<{ state: string }>(
      `SELECT state FROM pg_stat_replication WHERE application_name = '${name}'`,
    );
    if (rows[0]?.state === 'streaming') return;
    if (Date.now() > until)
      throw new Error(`standby ${name} is not streaming after ${timeoutMs} ms: ${rows[0]?.state ?? 'absent'}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startStandby(primary: TestCluster, name = 'standby1'): Promise<TestStandby> {
  const basebackup = requireBinary(join(PG_BIN, 'pg_basebackup'), 'PostgreSQL 15 pg_basebackup');
  const pgCtl = requireBinary(join(PG_BIN, 'pg_ctl'), 'PostgreSQL 15 pg_ctl');
  const base = await mkdtemp(join(tmpdir(), 'pgwarden-standby-'));
  const dataDir = join(base, 'data');
  const log = join(base, 'server.log');
  const ctl = (...args: string[]) => asPostgres(pgCtl, ['-D', dataDir, ...args]);
  const stop = () => ctl('-m', 'immediate', '-w', 'stop').catch(() => undefined);
  try {
    if (isRoot) {
      await chmod(base, 0o755);
      const { stdout: uid } = await execa('id', ['-u', 'postgres']);
      const { stdout: gid } = await execa('id', ['-g', 'postgres']);
      await chown(base, Number(uid), Number(gid));
    }
    // -R writes primary_conninfo (with this application_name and password) and standby.signal.
    await asPostgres(basebackup, ['-D', dataDir, '-R', '-X', 'stream', '-c', 'fast', '--no-sync'], {
      ...primary.env(),
      PGAPPNAME: name,
    });
    const port = await freePort();
    // Later lines win: the primary's own port and socket directory came with its postgresql.auto.conf.
    await appendFile(join(dataDir, 'postgresql.auto.conf'), `port = ${port}\nunix_socket_directories = '${base}'\n`);
    await ctl('-l', log, '-w', '-t', '60', 'start');
    await waitStreaming(primary, name);
    const connect = async () => {
      const client = new pg.Client({
        host: '127.0.0.1',
        port,
        user: primary.user,
        password: primary.password,
        database: 'postgres',
      });
      await client.connect();
      return client;
    };
    return {
      name,
      host: '127.0.0.1',
      port,
      dataDir,
      async query<T extends pg.QueryResultRow>(sql: string) {
        const client = await connect();
        try {
          return (await client.query<T>(sql)).rows;
        } finally {
          await client.end();
        }
      },
      stop,
      start: () => ctl('-l', log, '-w', '-t', '60', 'start'),
      async remove() {
        await stop();
        await rm(base, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stop();
    await rm(base, { recursive: true, force: true });
    throw err;
  }
}

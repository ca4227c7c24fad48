// What every recovery in npm run bench:pitr shares: running as the postgres user, starting a
// recovered data directory and waiting until it is promoted, and the state recorded at T that
// each tool's recovery must reproduce (a marker row, a row count and a sum).
import { existsSync } from 'node:fs';
import { appendFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import type { TestCluster } from '../../test/helpers/postgres.js';
import { PG_BIN } from '../../test/helpers/require.js';

export const isRoot = process.getuid?.() === 0;
export const since = (started: bigint) => Number(process.hrtime.bigint() - started) / 1e9;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function duBytes(path: string): Promise<number> {
  return Number((await execa('du', ['-sb', path])).stdout.split(/\s/)[0]);
}

export async function asPostgres(cmd: string, args: string[]) {
  return isRoot
    ? execa('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdin: 'ignore' })
    : execa(cmd, args, { stdin: 'ignore' });
}

/** The state at T, in database `bench`: what every recovery to T must show. */
export interface StateAtT {
  marker: string;
  historyRows: number;
  branchBalance: number;
}

/**
 * Writes a marker row (a random token) and reads the row count of pgbench_history and the sum of
 * pgbench_branches.bbalance, which every pgbench transaction changes. Call it when nothing else
 * writes, right before the WAL is switched and archived for the last time.
 */
export async function recordState(cluster: TestCluster): Promise<StateAtT> {
  const marker = `T-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  await cluster.query(
    'CREATE TABLE IF NOT EXISTS bench_marker (token text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())',
    'bench',
  );
  await cluster.query(`INSERT INTO bench_marker (token) VALUES ('${marker}')`, 'bench');
  const [row] = await cluster.query<{ rows: string; balance: string }>(
    'SELECT (SELECT count(*) FROM pgbench_history)::text AS rows, (SELECT sum(bbalance) FROM pgbench_branches)::text AS balance',
    'bench',
  );
  return { marker, historyRows: Number(row!.rows), branchBalance: Number(row!.balance) };
}

/** The checks of the state at T: each query returns 1 when the recovered database matches, else 0. */
export function stateChecks(state: StateAtT): { name: string; sql: string; min: number }[] {
  return [
    { name: 'marker row', sql: `SELECT count(*) FROM bench_marker WHERE token = '${state.marker}'`, min: 1 },
    {
      name: `pgbench_history has ${state.historyRows} rows`,
      sql: `SELECT (count(*) = ${state.historyRows})::int FROM pgbench_history`,
      min: 1,
    },
    {
      name: `sum(pgbench_branches.bbalance) = ${state.branchBalance}`,
      sql: `SELECT (sum(bbalance) = ${state.branchBalance})::int FROM pgbench_branches`,
      min: 1,
    },
  ];
}

/** Runs the checks against a recovered server; throws naming the first that fails and what it found. */
export async function checkState(port: number, password: string, state: StateAtT, who: string): Promise<void> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'bench' });
  await c.connect();
  try {
    const { rows } = await c.query<{ markers: string; rows: string; balance: string }>(
      `SELECT (SELECT count(*) FROM bench_marker WHERE token = $1)::text AS markers,
              (SELECT count(*) FROM pgbench_history)::text AS rows,
              (SELECT sum(bbalance) FROM pgbench_branches)::text AS balance`,
      [state.marker],
    );
    const found = rows[0]!;
    const wrong = [
      found.markers !== '1' ? `marker row ${state.marker} found ${found.markers} times` : '',
      Number(found.rows) !== state.historyRows ? `pgbench_history ${found.rows} rows, not ${state.historyRows}` : '',
      Number(found.balance) !== state.branchBalance
        ? `branch balance ${found.balance}, not ${state.branchBalance}`
        : '',
    ].filter(Boolean);
    if (wrong.length) throw new Error(`${who}: the recovered state is not the state at T: ${wrong.join('; ')}`);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * Points a recovered data directory at its own port and socket, with archiving off, starts it
 * and waits until it is promoted (pg_is_in_recovery() = false). Returns the seconds since
 * `started`, the LSN it reached and where the log says redo was done. The caller stops it.
 */
export async function startUntilPromoted(o: {
  data: string;
  dir: string;
  port: number;
  password: string;
  started: bigint;
  who: string;
}): Promise<{ seconds: number; reachedLsn: string; redoDone: string }> {
  const logFile = join(o.dir, 'server.log');
  await appendFile(
    join(o.data, 'postgresql.auto.conf'),
    `\n# benchmark recovery\nport = ${o.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${o.dir}'\narchive_mode = off\n`,
  );
  await asPostgres(join(PG_BIN, 'pg_ctl'), ['-D', o.data, '-l', logFile, '-W', 'start']);
  // The grace before "stopped" counts from the start, not from o.started: a slow restore must not eat it.
  const serverStarted = process.hrtime.bigint();
  for (;;) {
    const c = new pg.Client({
      host: '127.0.0.1',
      port: o.port,
      user: 'postgres',
      password: o.password,
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
    if (state?.r === false) {
      const seconds = since(o.started);
      // Where replay ended, to compare with pgwarden's reachedLsn: all must replay all the WAL.
      const redoDone = /redo done at (\S+)/.exec(await readFile(logFile, 'utf8'))?.[1] ?? '?';
      return { seconds, reachedLsn: state.lsn, redoDone };
    }
    if (state === undefined && since(serverStarted) > 10 && !existsSync(join(o.data, 'postmaster.pid'))) {
      throw new Error(
        `${o.who}: the server stopped: ${(await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join(' | ')}`,
      );
    }
    await sleep(250);
  }
}

export async function stopServer(data: string): Promise<void> {
  await asPostgres(join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
}

/**
 * Removes a run's scratch directory, retrying while something still writes into it (a process the
 * stopped server started may outlive it briefly); one still left is removed with the work directory,
 * and never hides the run's own error.
 */
export async function removeScratch(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 300 }).catch((err: unknown) =>
    console.log(`  (${dir} not removed yet: ${err instanceof Error ? err.message : String(err)})`),
  );
}

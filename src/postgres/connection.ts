// Everything that talks to a PostgreSQL server: connections (pg), the client tools (execa) with
// passwords passed by environment, never argv, and the failure classification operators see.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { ClusterConfig, Config } from '../config/index.js';
import { ErrorType, nonRetryable, retryable } from '../lib/errors.js';
import { passfileLookup } from '../lib/passfile.js';

export interface ClusterRef {
  name: string;
  config: ClusterConfig;
}

/** The named cluster from the config, or a non-retryable UnknownCluster failure listing the known ones. */
export function clusterRef(config: Config, name: string): ClusterRef {
  const cluster = config.clusters[name];
  if (!cluster) {
    const known = Object.keys(config.clusters).join(', ') || 'none';
    throw nonRetryable(ErrorType.UnknownCluster, `unknown cluster "${name}" (configured: ${known})`);
  }
  return { name, config: cluster };
}

/** Environment for libpq tools: everything they need to connect, the secret included. */
export function libpqEnv(cluster: ClusterRef, database: string, env: NodeJS.ProcessEnv): Record<string, string> {
  const c = cluster.config;
  const out: Record<string, string> = {
    PGHOST: c.host,
    PGPORT: String(c.port),
    PGUSER: c.user,
    PGDATABASE: database,
    PGAPPNAME: 'pgwarden',
    PGCONNECT_TIMEOUT: '10',
  };
  if (c.sslmode) out.PGSSLMODE = c.sslmode;
  if (c.passfile) out.PGPASSFILE = c.passfile;
  const password = resolvePassword(cluster, database, env);
  if (password !== undefined) out.PGPASSWORD = password;
  return out;
}

export function resolvePassword(cluster: ClusterRef, database: string, env: NodeJS.ProcessEnv): string | undefined {
  const c = cluster.config;
  if (c.passwordEnv) {
    const value = env[c.passwordEnv];
    if (value === undefined) {
      throw nonRetryable(
        ErrorType.AuthenticationFailed,
        `cluster "${cluster.name}": environment variable ${c.passwordEnv} (its passwordEnv) is not set on this worker`,
      );
    }
    return value;
  }
  if (c.passfile) {
    let content: string;
    try {
      content = readFileSync(c.passfile, 'utf8');
    } catch (err) {
      throw nonRetryable(
        ErrorType.AuthenticationFailed,
        `cluster "${cluster.name}": cannot read passfile ${c.passfile}: ${(err as NodeJS.ErrnoException).code}`,
      );
    }
    return passfileLookup(content, { host: c.host, port: c.port, database, user: c.user });
  }
  return undefined;
}

function sslOption(mode: ClusterConfig['sslmode']): pg.ClientConfig['ssl'] {
  if (!mode || mode === 'disable' || mode === 'allow' || mode === 'prefer') return false;
  return { rejectUnauthorized: mode === 'verify-ca' || mode === 'verify-full' };
}

/** Turns a connection error into a failure that names the cluster and the problem, never the secret. */
export function classifyConnectError(cluster: ClusterRef, database: string, err: unknown): Error {
  const e = err as { code?: string; message?: string };
  const where = `cluster "${cluster.name}" (${cluster.config.host}:${cluster.config.port})`;
  switch (e.code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ETIMEDOUT':
    case 'EAI_AGAIN':
      return nonRetryable(ErrorType.ServerUnreachable, `${where} is unreachable: ${e.code}`);
    case '3D000':
      return nonRetryable(ErrorType.UnknownDatabase, `${where} has no database "${database}"`);
    case '28P01':
    case '28000':
      return nonRetryable(
        ErrorType.AuthenticationFailed,
        `${where}: authentication failed for user "${cluster.config.user}"`,
      );
    case '57P03': // the database system is starting up
      return retryable(ErrorType.ServerUnreachable, `${where} is starting up`);
    default:
      if (/timeout/i.test(e.message ?? '')) {
        return nonRetryable(ErrorType.ServerUnreachable, `${where} is unreachable: connection timed out`);
      }
      return retryable(ErrorType.ServerUnreachable, `${where}: cannot connect: ${e.message ?? String(err)}`);
  }
}

export async function connect(cluster: ClusterRef, database: string, env: NodeJS.ProcessEnv): Promise<pg.Client> {
  const c = cluster.config;
  const client = new pg.Client({
    host: c.host,
    port: c.port,
    user: c.user,
    password: resolvePassword(cluster, database, env),
    database,
    ssl: sslOption(c.sslmode),
    application_name: 'pgwarden',
    connectionTimeoutMillis: 10_000,
  });
  // A server that goes away mid-query emits 'error' on the client; the query rejects too.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw classifyConnectError(cluster, database, err);
  }
  return client;
}

export async function withConnection<T>(
  cluster: ClusterRef,
  database: string,
  env: NodeJS.ProcessEnv,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = await connect(cluster, database, env);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface ServerInfo {
  version: string;
  versionNum: number;
}

export async function serverInfo(client: pg.Client): Promise<ServerInfo> {
  const { rows } = await client.query<{ v: string; n: string }>(
    `SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n`,
  );
  return { version: rows[0]!.v, versionNum: Number(rows[0]!.n) };
}

/** Databases worth backing up: connectable, not templates. */
export async function listDatabases(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ datname: string }>(
    `SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname`,
  );
  return rows.map((r) => r.datname);
}

/** User tables that hold rows (partitions counted as leaves, parents skipped; extension tables skipped). */
export async function listTables(client: pg.Client): Promise<{ schema: string; name: string }[]> {
  const { rows } = await client.query<{ schema: string; name: string }>(`
    SELECT n.nspname AS schema, c.relname AS name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r'
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
     ORDER BY 1, 2`);
  return rows;
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Exact row counts, one table at a time, inside the caller's transaction (and so its snapshot). */
export async function countRows(
  client: pg.Client,
  tables: { schema: string; name: string }[],
): Promise<{ schema: string; name: string; rows: number }[]> {
  const out = [];
  for (const t of tables) {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${quoteIdent(t.schema)}.${quoteIdent(t.name)}`,
    );
    out.push({ ...t, rows: Number(rows[0]!.n) });
  }
  return out;
}

/**
 * Path of a PostgreSQL client tool: the cluster's binDir, else the Debian directory of the
 * server's major version (pg_dump must be at least as new as the server), else PATH.
 */
export function pgTool(name: string, cluster: ClusterConfig, serverVersionNum?: number): string {
  if (cluster.binDir) return join(cluster.binDir, name);
  if (serverVersionNum) {
    const major = Math.floor(serverVersionNum / 10000);
    const candidate = `/usr/lib/postgresql/${major}/bin/${name}`;
    if (existsSync(candidate)) return candidate;
  }
  return name;
}

// pg_ctl and the server programs, run as the data directory's owner, and who that owner is.
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import type { ClusterConfig } from '../../config/index.js';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import * as postgres from '../../postgres/connection.js';
import { TOOL_ENV } from '../../stream/processes.js';

/** Runs pg_ctl as the data directory's owner (pg_ctl refuses root). */
export const pgCtl = (
  clusterConfig: ClusterConfig,
  dataDir: string,
  args: string[],
  options: { reject?: boolean } = {},
) => serverTool('pg_ctl', clusterConfig, dataDir, args, options);

/** A server program (pg_ctl, postgres) on `dataDir`, as the data directory's owner, of the data directory's major version. */
export async function serverTool(
  name: string,
  clusterConfig: ClusterConfig,
  dataDir: string,
  args: string[],
  options: { reject?: boolean } = {},
) {
  const owner = await stat(dataDir);
  // The server is down often enough here: its major version comes from the data directory.
  const major = Number((await readFile(join(dataDir, 'PG_VERSION'), 'utf8').catch(() => '0')).trim());
  const tool = postgres.pgTool(name, clusterConfig, major * 10000);
  return execa(tool, ['-D', dataDir, ...args], {
    uid: process.getuid?.() === 0 ? owner.uid : undefined,
    gid: process.getuid?.() === 0 ? owner.gid : undefined,
    env: TOOL_ENV,
    extendEnv: false,
    stdin: 'ignore',
    reject: options.reject ?? true,
    cwd: '/',
  });
}

export async function isRunning(clusterConfig: ClusterConfig, dataDir: string): Promise<boolean> {
  if (!existsSync(join(dataDir, 'PG_VERSION'))) return false; // missing or empty (a rebuilt host): nothing runs there
  const r = await pgCtl(clusterConfig, dataDir, ['status'], { reject: false });
  return r.exitCode === 0;
}

/**
 * Whether the server says (postmaster.pid's status line) that it may accept connections: while it is
 * "starting" (recovery not yet consistent) each connection attempt only adds a FATAL line to its log.
 * A file that cannot be read, or has no status line, says nothing: then it is worth a try.
 */
export async function mayAcceptConnections(dataDir: string): Promise<boolean> {
  const text = await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch((err: NodeJS.ErrnoException) =>
    err.code === 'ENOENT' ? '' : undefined,
  );
  if (text === undefined) return true;
  const status = text.split('\n')[7]?.trim();
  return status !== 'starting' && status !== 'stopping' && text !== '';
}

/** Who owns the cluster's files: the data directory's owner or, on a rebuilt host where it is missing, its parent's. */
export async function dataOwner(dataDirectory: string): Promise<{ uid: number; gid: number }> {
  const existing = existsSync(dataDirectory) ? dataDirectory : dirname(dataDirectory);
  const owner = await stat(existing).catch(() => {
    throw nonRetryable(
      ErrorType.InvalidInput,
      `neither ${dataDirectory} nor ${existing} exists on ${hostname()}: create ${existing} owned by the PostgreSQL user`,
    );
  });
  if (owner.uid === 0 && process.getuid?.() === 0) {
    throw nonRetryable(
      ErrorType.InvalidInput,
      `${existing} on ${hostname()} is owned by root and PostgreSQL refuses to run as root: create ${dataDirectory} owned by the PostgreSQL user (mkdir -m 700, chown postgres:postgres)`,
    );
  }
  return owner;
}

// The Temporal dev server (`temporal server start-dev`) from the binary scripts/setup.sh installs.
// Used by `pgwarden dev`, the demo and the tests; never downloads anything.
import { existsSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { execa, type ResultPromise } from 'execa';
import { listeningSocketInodes, socketInode } from '../lib/listeningSockets.js';
import { SEARCH_ATTRIBUTE_NAMES } from '../lib/visibility.js';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** $PGWARDEN_TEMPORAL_BIN, else .tools/bin/temporal (scripts/setup.sh), else `temporal` on PATH. */
export function temporalBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.PGWARDEN_TEMPORAL_BIN) return env.PGWARDEN_TEMPORAL_BIN;
  const local = join(projectRoot, '.tools/bin/temporal');
  if (existsSync(local)) return local;
  for (const dir of (env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'temporal'))) return join(dir, 'temporal');
  }
  return undefined;
}

/** A port the dev stack means to listen on, named for the error (`--ui-port`). */
export interface PortUse {
  port: number;
  /** What listens there: `Temporal server`, `Temporal UI`, `pgwarden metrics`. */
  what: string;
  /** The option that chooses it, for the error's advice. */
  flag?: string;
}

/** A port of the dev stack is taken by another process, or not a port: one line naming it. */
export class DevPortError extends Error {
  override name = 'DevPortError';
}

/** Whether something already listens on 127.0.0.1:port (or on every address), by trying to bind it. */
export function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(true) : reject(err)));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(false)));
  });
}

/** Refuses, before anything starts, ports that are taken or given twice. */
export async function assertPortsFree(uses: PortUse[]): Promise<void> {
  const advice = (u: PortUse) => `choose another${u.flag ? ` with ${u.flag}` : ''}`;
  for (const [i, u] of uses.entries()) {
    const twice = uses.slice(0, i).find((o) => o.port === u.port);
    if (twice)
      throw new DevPortError(`port ${u.port} is given for both the ${twice.what} and the ${u.what}: ${advice(u)}`);
    if (await portTaken(u.port)) {
      throw new DevPortError(
        `port ${u.port} (${u.what}) is taken: another process listens on 127.0.0.1:${u.port}; stop it or ${advice(u)}`,
      );
    }
  }
}

export interface DevPorts {
  port: number;
  uiPort: number;
  metricsPort?: number;
  /** All of them, named, for assertPortsFree. */
  uses: PortUse[];
}

/** The dev stack's ports from its flags `--port`, `--ui-port`, `--metrics-port` (as typed). */
export function devPorts(
  flags: { port: string; uiPort: string; metricsPort?: string },
  metricsDefault?: number,
): DevPorts {
  const parse = (value: string, flag: string) => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535)
      throw new DevPortError(`${flag} "${value}" is not a TCP port (1-65535)`);
    return Number(value);
  };
  const port = parse(flags.port, '--port');
  const uiPort = parse(flags.uiPort, '--ui-port');
  const metricsPort = flags.metricsPort === undefined ? metricsDefault : parse(flags.metricsPort, '--metrics-port');
  const uses: PortUse[] = [
    { port, what: 'Temporal server', flag: '--port' },
    { port: uiPort, what: 'Temporal UI', flag: '--ui-port' },
  ];
  if (metricsPort) uses.push({ port: metricsPort, what: 'pgwarden metrics', flag: '--metrics-port' });
  return { port, uiPort, metricsPort, uses };
}

/**
 * Whether process `pid` holds the socket listening on `port` (Linux: /proc/net/tcp{,6} and the
 * process's file descriptors); undefined where /proc cannot tell.
 */
export async function listensOn(pid: number, port: number): Promise<boolean | undefined> {
  const inodes = new Set<string>();
  let readable = false;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    readable = true;
    for (const inode of listeningSocketInodes(text, port)) inodes.add(inode);
  }
  if (!readable) return undefined;
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => undefined);
  if (!fds) return undefined;
  for (const fd of fds) {
    const inode = socketInode(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
    if (inode && inodes.has(inode)) return true;
  }
  return false;
}

export interface DevServer {
  address: string;
  uiAddress?: string;
  stop(): Promise<void>;
}

export interface DevServerOptions {
  port: number;
  /** Serve the web UI on this port; omitted: headless. */
  uiPort?: number;
  /** SQLite file to keep history across restarts; omitted: in memory. */
  dbFile?: string;
  /** How long to wait for the frontend to answer (a loaded CI machine is slow). */
  readyTimeoutMs?: number;
  searchAttributes?: Record<string, 'Keyword' | 'Text' | 'Int' | 'Datetime' | 'Bool' | 'Double' | 'KeywordList'>;
  /**
   * Run the server in its own process group, so a Ctrl-C in the terminal reaches only the caller,
   * which stops the server after its own clean-up (the demo). It is still stopped when the caller
   * exits; only a SIGKILL of the caller leaves it running.
   */
  detached?: boolean;
}

export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const bin = temporalBinary();
  if (!bin) throw new Error('the Temporal CLI is not installed: run scripts/setup.sh (it builds .tools/bin/temporal)');
  // Another server on the port would answer in its place: refuse before starting.
  const ports: PortUse[] = [{ port: options.port, what: 'Temporal server', flag: '--port' }];
  if (options.uiPort) ports.push({ port: options.uiPort, what: 'Temporal UI', flag: '--ui-port' });
  await assertPortsFree(ports);
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(options.port), '--log-level', 'error'];
  if (options.uiPort) args.push('--ui-port', String(options.uiPort));
  else args.push('--headless');
  if (options.dbFile) args.push('--db-filename', options.dbFile);
  // pgwarden's own search attributes, so the UI filters runs by cluster, database and kind.
  const attributes = {
    ...Object.fromEntries(SEARCH_ATTRIBUTE_NAMES.map((n) => [n, 'Keyword'])),
    ...options.searchAttributes,
  };
  for (const [name, type] of Object.entries(attributes)) args.push('--search-attribute', `${name}=${type}`);
  const proc: ResultPromise = execa(bin, args, {
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    cleanup: true,
    detached: !!options.detached,
  });
  // execa's clean-up skips detached processes: stop it on exit ourselves.
  const killOnExit = () => proc.kill('SIGKILL');
  if (options.detached) process.once('exit', killOnExit);
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  let exited: string | undefined;
  void proc.then((r) => {
    exited = `code ${r.exitCode ?? r.signal}`;
    process.off('exit', killOnExit);
  });
  const address = `127.0.0.1:${options.port}`;
  const stop = async () => {
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await proc;
    clearTimeout(timer);
  };
  const uiAddress = options.uiPort ? `http://127.0.0.1:${options.uiPort}` : undefined;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  const died = () => {
    const taken = /(\d+\.\d+\.\d+\.\d+|\[[^\]]*\]):(\d+)[^\n]*address already in use/.exec(stderr);
    if (taken)
      return new DevPortError(
        `port ${taken[2]} is taken: the Temporal dev server could not listen on ${taken[1]}:${taken[2]}`,
      );
    return new Error(`temporal dev server exited: ${stderr.trim().split('\n').pop() || exited}`);
  };
  // Ready when the frontend (and the UI) answer and this child is the process listening there.
  const answers = async (): Promise<void> => {
    const connection = await Connection.connect({ address, connectTimeout: 1000 });
    try {
      await connection.workflowService.getSystemInfo({});
    } finally {
      await connection.close();
    }
    if (uiAddress) {
      const res = await fetch(uiAddress, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
    }
  };
  for (;;) {
    if (exited) throw died();
    try {
      await answers();
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`temporal dev server at ${address} not ready: ${(err as Error).message}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  for (const u of ports) {
    const own = exited ? false : await listensOn(proc.pid!, u.port);
    if (own === false) {
      await stop();
      if (exited && /address already in use/.test(stderr)) throw died();
      throw new DevPortError(
        `port ${u.port} (${u.what}) answers, but not from the Temporal dev server pgwarden started: another process took it; stop it or choose another with ${u.flag}`,
      );
    }
  }
  return { address, uiAddress, stop };
}

// The Temporal dev server (`temporal server start-dev`) from the binary scripts/setup.sh installs.
// Used by `pgwarden dev`, the demo and the tests; never downloads anything.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { execa, type ResultPromise } from 'execa';
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
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(options.port), '--log-level', 'error'];
  if (options.uiPort) args.push('--ui-port', String(options.uiPort));
  else args.push('--headless');
  if (options.dbFile) args.push('--db-filename', options.dbFile);
  // pgwarden's own search attributes, so the UI filters runs by cluster, database and kind.
  const attributes = { ...Object.fromEntries(SEARCH_ATTRIBUTE_NAMES.map((n) => [n, 'Keyword'])), ...options.searchAttributes };
  for (const [name, type] of Object.entries(attributes)) args.push('--search-attribute', `${name}=${type}`);
  const proc: ResultPromise = execa(bin, args, { stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', buffer: false, reject: false, cleanup: true, detached: !!options.detached });
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
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (exited) throw new Error(`temporal dev server exited: ${stderr.trim() || exited}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      await connection.workflowService.getSystemInfo({});
      await connection.close();
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`temporal dev server at ${address} not ready: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return { address, uiAddress: options.uiPort ? `http://127.0.0.1:${options.uiPort}` : undefined, stop };
}

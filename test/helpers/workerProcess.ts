// A pgwarden worker as a separate process (`bin/pgwarden worker`), so a test can kill it for real.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { inject } from 'vitest';
import type { Config } from '../../src/config/index.js';

const root = join(import.meta.dirname, '../..');

export interface WorkerProcess {
  pid: number;
  output(): string;
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Sends `signal` and returns the exit code. */
  stop(signal: NodeJS.Signals): Promise<number | undefined>;
}

export async function spawnWorker(
  configFile: string,
  config: Config,
  secrets: NodeJS.ProcessEnv,
): Promise<WorkerProcess> {
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const proc: ResultPromise = execa(join(root, 'bin/pgwarden'), ['worker', '--config', configFile], {
    // The sources under test, never a stale dist/.
    env: { ...secrets, TEMPORAL_ADDRESS: inject('temporalAddress'), PGWARDEN_FROM_SOURCE: '1' },
    stdin: 'ignore',
    all: true,
    buffer: false,
    reject: false,
  });
  let output = '';
  let exited = false;
  void proc.then(() => (exited = true));
  proc.all?.on('data', (d: Buffer) => (output += d.toString()));
  // Ready when it says so (the workflow bundle is built at start).
  const deadline = Date.now() + 120_000;
  while (!output.includes('pgwarden worker:')) {
    if (exited || Date.now() > deadline) throw new Error(`worker did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    pid: proc.pid!,
    output: () => output,
    async kill(signal) {
      proc.kill(signal);
      await proc;
    },
    async stop(signal) {
      proc.kill(signal);
      return (await proc).exitCode;
    },
  };
}

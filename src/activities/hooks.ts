// The operator's hooks (`clusters.<name>.hooks`): argv run around a restore or a recovery to stop
// and start the applications. One runner for every procedure, so that each hook gets the same
// environment (none of the worker's secrets) and, after a worker's death, never runs twice at once.
import { execa } from 'execa';
import { type ErrorType, nonRetryable } from '../lib/errors.js';
import { runAfterEarlierAttempt } from './orphans.js';
import { TOOL_ENV } from '../stream/processes.js';

const HOOK_TIMEOUT_MS = 10 * 60_000;

export interface HookRun {
  hook: 'preRestore' | 'postRestore';
  argv: string[];
  cluster: string;
  database?: string;
  /** The error type a failing hook fails its step with. */
  failure: ErrorType;
  /** Ends the hook when the step is cancelled (unset: a cancelled step lets its hook finish). */
  signal?: AbortSignal;
}

/**
 * Runs a hook; a non-zero exit fails non-retryably with its last output. A retry after a worker's
 * death on the same host first waits for the hook that worker started to end (orphans.ts).
 */
export async function runHook(run: HookRun): Promise<void> {
  const [file, ...args] = run.argv;
  // The worker's environment holds database passwords and the key passphrase: hooks get none of it.
  const env: Record<string, string> = { PATH: TOOL_ENV.PATH!, PGWARDEN_CLUSTER: run.cluster, PGWARDEN_HOOK: run.hook };
  if (run.database) env.PGWARDEN_DATABASE = run.database;
  const r = await runAfterEarlierAttempt(`${run.hook} hook`, HOOK_TIMEOUT_MS, () =>
    execa(file!, args, {
      env,
      extendEnv: false,
      reject: false,
      all: true,
      timeout: HOOK_TIMEOUT_MS,
      ...(run.signal ? { cancelSignal: run.signal } : {}),
    }),
  );
  if (r.exitCode !== 0)
    throw nonRetryable(
      run.failure,
      `${run.hook} hook ${run.argv.join(' ')} failed (exit ${r.exitCode}): ${String(r.all ?? '')
        .trim()
        .slice(-500)}`,
    );
}

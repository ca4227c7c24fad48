// Child processes of a worker that died. SIGKILL of a worker does not end what it started: a hook
// (stopping the applications) goes on running, unseen. The retry of that step on a new worker of
// the same host must not run the hook again beside it: each attempt records its child (pid and
// start time, so a reused pid is not mistaken for it) under a name of the step, and the next
// attempt waits until that process has ended before it starts its own.
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { writeFileAtomic } from '../host/atomicFile.js';
import { processStartTime } from '../host/processStart.js';

/** The record of `what` run by this activity (the same for every attempt of it). */
function recordFile(what: string): string {
  const info = Context.current().info;
  const key = `${info.workflowExecution?.workflowId}\n${info.workflowExecution?.runId}\n${info.activityId}\n${what}`;
  return join(tmpdir(), `pgwarden-child-${createHash('sha256').update(key).digest('hex').slice(0, 24)}.json`);
}

/**
 * Runs `start` once an earlier attempt's `what` no longer runs (waiting at most `timeoutMs`; the
 * activity heartbeats meanwhile), with the child recorded until it ends. Returns what `start` returns.
 */
export async function runAfterEarlierAttempt<T extends Promise<unknown> & { pid?: number }>(
  what: string,
  timeoutMs: number,
  start: () => T,
): Promise<Awaited<T>> {
  const file = recordFile(what);
  const earlier = await readFile(file, 'utf8').then(
    (t) => JSON.parse(t) as { pid: number; started: string },
    () => undefined,
  );
  const deadline = Date.now() + timeoutMs;
  while (earlier && processStartTime(earlier.pid) === earlier.started && Date.now() < deadline) {
    Context.current().cancellationSignal.throwIfAborted();
    await new Promise((r) => setTimeout(r, 200));
  }
  const child = start();
  try {
    const started = child.pid === undefined ? undefined : processStartTime(child.pid);
    if (started) await writeFileAtomic(file, JSON.stringify({ pid: child.pid, started }));
    return await child;
  } finally {
    await rm(file, { force: true });
  }
}

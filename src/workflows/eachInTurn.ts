// The "*" runs (fullBackup, verifyBackup): one child per database, one at a time, and one failed
// database never stops the others; cancellation still stops at once.
import { isCancellation } from '@temporalio/workflow';
import { rootMessage } from '../lib/runDetails.js';

/** Runs `run` for each item in turn: what succeeded, and each failed item with its one-line error. */
export async function eachInTurn<T, R>(
  items: readonly T[],
  run: (item: T) => Promise<R>,
): Promise<{ done: R[]; failed: (T & { error: string })[] }> {
  const done: R[] = [];
  const failed: (T & { error: string })[] = [];
  for (const item of items) {
    try {
      done.push(await run(item));
    } catch (err) {
      if (isCancellation(err)) throw err;
      failed.push({ ...item, error: rootMessage(err) });
    }
  }
  return { done, failed };
}

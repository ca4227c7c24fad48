// Restore from offsite when objects sit in an S3 archive storage class (GLACIER, DEEP_ARCHIVE: a
// lifecycle rule moved them there): GetObject refuses them until S3 has restored a temporary copy.
// Before downloading, ask for the restores and wait for them, heartbeating (the caller's timer),
// up to the repository's bound; anything still archived then fails with a message that says so.
import { Context } from '@temporalio/activity';
import type { Config } from '../../config/index.js';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import type { Storage } from '../../storage/storage.js';

export interface ArchiveWait {
  /** Days the restored copy stays readable. */
  days: number;
  /** Longest wait for S3 to finish the restores. */
  maxWaitMs: number;
  /** Between two polls. */
  pollMs: number;
  /** Cancellation of the activity: stops the wait. */
  signal?: AbortSignal;
  sleep?: (ms: number) => Promise<void>;
  /** What is still pending after each poll (for heartbeats and logs). */
  onPending?: (pending: number) => void;
}

/** A repository's bound from its config (S3: restoreDays, restoreWaitHours); polled every minute. */
export function archiveWaitOf(config: Config, repository: string): ArchiveWait {
  const repo = config.repositories[repository];
  // The bounds are config keys of the S3 driver, the one that declares archive classes
  // (features.archiveClasses): the store is not open here, so its config is asked for them. Whether
  // to wait at all is the store's declared feature, asked by whenReadable.
  const s3 = repo && 'restoreDays' in repo ? repo : undefined;
  let signal: AbortSignal | undefined;
  try {
    signal = Context.current().cancellationSignal;
  } catch {
    signal = undefined; // outside an activity
  }
  return { days: s3?.restoreDays ?? 3, maxWaitMs: (s3?.restoreWaitHours ?? 20) * 3_600_000, pollMs: 60_000, signal };
}

/** Resolves once every key can be read (at once for a store without archive classes). */
export async function whenReadable(store: Storage, keys: string[], wait: ArchiveWait): Promise<void> {
  if (!store.features.archiveClasses || !store.prepareRead || keys.length === 0) return;
  const sleep = wait.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = Date.now() + wait.maxWaitMs;
  let pending = (await store.prepareRead(keys, wait.days)).pending;
  while (pending.length > 0) {
    wait.onPending?.(pending.length);
    if (wait.signal?.aborted)
      throw new Error(
        `offsite repository "${store.name}": cancelled while waiting for restores from the archive storage class`,
      );
    if (Date.now() + wait.pollMs > deadline) {
      throw nonRetryable(
        ErrorType.OffsiteUnavailable,
        `offsite repository "${store.name}": ${pending.length} object(s) still being restored from the archive storage class after ${Math.round(wait.maxWaitMs / 60_000)} minutes (first: ${pending[0]}); run again later, the restores requested go on`,
      );
    }
    await sleep(wait.pollMs);
    pending = (await store.prepareRead(pending, wait.days)).pending;
  }
}

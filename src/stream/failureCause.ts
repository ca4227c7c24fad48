// Which failure to report when a chain of processes feeding the repository failed (fullBackup's
// pg_dump | zstd | tee | gpg, baseBackup's pg_basebackup | zstd → gpg in the store). One process
// failing takes the others down with it (a closed pipe: SIGPIPE, EPIPE, ECONNRESET, gpg's "write
// error"), so those are consequences, never the cause to report.
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType, retryable } from '../lib/errors.js';
import { brokenPipe } from './gpgEncrypt.js';

export type Settled = PromiseSettledResult<unknown>;
const reason = (r: Settled | undefined) => (r?.status === 'rejected' ? (r.reason as unknown) : undefined);

export interface ChainOutcome {
  /** The tools feeding the chain, in order (pg_dump, zstd, tee; pg_basebackup, zstd). */
  tools: Settled[];
  /** gpg as a process of the chain; absent when it runs inside the store (its failure is the store's). */
  gpg?: Settled;
  /** Writing the artifact. */
  stored: Settled;
  /** The artifact's path, named in a storage failure. */
  path: string;
}

/** True when any part of the chain failed. */
export function chainFailed(o: ChainOutcome): boolean {
  return [...o.tools, o.gpg, o.stored].some((r) => r?.status === 'rejected');
}

/**
 * The cause: the store when it failed (a full disk makes gpg's write fail, which says nothing about
 * the keys; gpg refusing a key inside the store is KeyUnreadable already), else gpg when it names a
 * key problem (an ApplicationFailure: gpgEncrypt.ts), else the tool that failed on its own, else gpg's
 * own failure; only broken pipes: the first, as `describeTool` says (retryable).
 */
export function failureCause(o: ChainOutcome, describeTool: (err: unknown) => unknown): unknown {
  const store = reason(o.stored);
  if (store !== undefined) return storeFailure(store, o.path);
  const gpg = reason(o.gpg);
  if (gpg instanceof ApplicationFailure) return gpg;
  const own = o.tools.map(reason).find((err) => err !== undefined && !brokenPipe(err));
  if (own !== undefined) return describeTool(own);
  if (gpg !== undefined && !brokenPipe(gpg)) return gpg;
  return describeTool([...o.tools, o.gpg].map(reason).find((err) => err !== undefined));
}

/** Writing the artifact failed (full disk, I/O error, its directory gone): worth a retry. */
export function storeFailure(err: unknown, path: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (e instanceof ApplicationFailure || e.name === 'AbortError' || typeof e.code !== 'string') return err;
  const type =
    e.code === 'ENOSPC' || e.code === 'EDQUOT' ? ErrorType.InsufficientDiskSpace : ErrorType.RepositoryUnavailable;
  return retryable(type, `storing ${path} failed: ${e.message}`);
}

// Opens the offsite repositories a cluster syncs to, by name, from the config.
import type { Config, OffsiteRepositoryConfig } from '../config/index.js';
import { ErrorType, nonRetryable } from '../lib/errors.js';
import { createRsyncStore } from './rsync.js';
import { createS3Store } from './s3.js';
import type { OffsiteStore } from './store.js';

/** The offsite repositories of a cluster: its `offsite` list, else every s3 and rsync repository. */
export function offsiteNames(config: Config, cluster: string): string[] {
  const c = config.clusters[cluster];
  if (!c) throw nonRetryable(ErrorType.UnknownCluster, `unknown cluster "${cluster}"`);
  return c.offsite ?? Object.entries(config.repositories).filter(([, r]) => r.type !== 'local').map(([name]) => name);
}

export function openStore(config: Config, name: string, env: NodeJS.ProcessEnv): OffsiteStore {
  const repo = config.repositories[name];
  if (!repo || repo.type === 'local') throw nonRetryable(ErrorType.InvalidInput, `"${name}" is not an offsite (s3 or rsync) repository in the config`);
  const offsite: OffsiteRepositoryConfig = repo;
  return offsite.type === 's3' ? createS3Store(name, offsite, env) : createRsyncStore(name, offsite);
}

/** Runs `fn` with an open store and always closes it. */
export async function withStore<T>(config: Config, name: string, env: NodeJS.ProcessEnv, fn: (store: OffsiteStore) => Promise<T>): Promise<T> {
  const store = openStore(config, name, env);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

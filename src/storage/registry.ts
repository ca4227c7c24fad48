// Opens a repository's storage by name, from the config: each repository type maps to its driver
// in one line (drivers), so a new backend is one driver and one line here.
import type { Config } from '../config/index.js';
import type { RepositoryConfig } from '../config/repositories.js';
import { ErrorType, nonRetryable } from '../lib/errors.js';
import { createPosixStorage } from './posix.js';
import { createRsyncStore } from './rsync.js';
import { createS3Store } from './s3.js';
import type { Storage } from './storage.js';

type Driver<T extends RepositoryConfig['type']> = (
  name: string,
  config: Extract<RepositoryConfig, { type: T }>,
  env: NodeJS.ProcessEnv,
) => Storage;

const drivers: { [T in RepositoryConfig['type']]: Driver<T> } = {
  local: (name, config) => createPosixStorage(name, config.path),
  s3: (name, config, env) => createS3Store(name, config, env),
  rsync: (name, config) => createRsyncStore(name, config),
};

/** Opens any repository of the config with its driver. */
export function openStorage(config: Config, name: string, env: NodeJS.ProcessEnv): Storage {
  const repo = config.repositories[name];
  if (!repo) throw nonRetryable(ErrorType.InvalidInput, `"${name}" is not a repository in the config`);
  return (drivers[repo.type] as Driver<typeof repo.type>)(name, repo, env);
}

export function openStore(config: Config, name: string, env: NodeJS.ProcessEnv): Storage {
  const repo = config.repositories[name];
  if (!repo || repo.type === 'local')
    throw nonRetryable(ErrorType.InvalidInput, `"${name}" is not an offsite (s3 or rsync) repository in the config`);
  return openStorage(config, name, env);
}

/** Runs `fn` with an open store and always closes it. */
export async function withStore<T>(
  config: Config,
  name: string,
  env: NodeJS.ProcessEnv,
  fn: (store: Storage) => Promise<T>,
): Promise<T> {
  const store = openStore(config, name, env);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

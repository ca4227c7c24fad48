// Builds a pgwarden config for a test cluster, key and repository.
import { parseConfig, type Config, type ConfigInput } from '../../src/config/index.js';
import type { TestCluster } from './postgres.js';
import type { TestKey } from './gpg.js';

export const PASSWORD_ENV = 'PGWARDEN_TEST_PASSWORD';
export const PASSPHRASE_ENV = 'PGWARDEN_TEST_PASSPHRASE';

export interface TestConfigOptions {
  cluster: Pick<TestCluster, 'host' | 'port' | 'user' | 'dataDir'>;
  repository: string;
  taskQueue: string;
  key?: TestKey;
  extra?: Partial<ConfigInput>;
}

export function testConfig(o: TestConfigOptions): Config {
  return parseConfig({
    temporal: { address: 'unused', taskQueue: o.taskQueue },
    clusters: {
      main: {
        host: o.cluster.host,
        port: o.cluster.port,
        user: o.cluster.user,
        passwordEnv: PASSWORD_ENV,
        dataDirectory: o.cluster.dataDir,
      },
    },
    // Extra repositories (offsite) join the local one.
    repositories: { local: { type: 'local', path: o.repository }, ...o.extra?.repositories },
    ...(o.key
      ? {
          encryption: {
            recipients: [o.key.publicKeyFile],
            privateKeyFile: o.key.privateKeyFile,
            passphraseEnv: PASSPHRASE_ENV,
          },
        }
      : {}),
    worker: { host: o.taskQueue },
    ...withoutRepositories(o.extra),
  });
}

function withoutRepositories(extra: Partial<ConfigInput> = {}): Partial<ConfigInput> {
  const { repositories: _, ...rest } = extra;
  return rest;
}

export function testSecrets(cluster: TestCluster, key?: TestKey): NodeJS.ProcessEnv {
  return { [PASSWORD_ENV]: cluster.password, ...(key ? { [PASSPHRASE_ENV]: key.passphrase } : {}) };
}

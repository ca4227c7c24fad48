// The set-up the chain-failure tests share (dumpFailures, baseFailures): a real cluster, a test key
// and a key gpg refuses to encrypt to, in a scratch directory removed afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { RecipientKeys } from '../../src/stream/pipeline.js';
import { createTestKey, testRecipients, type TestKey } from './gpg.js';
import { startCluster, type TestCluster } from './postgres.js';

export interface ChainFailureSetup {
  cluster: TestCluster;
  dir: string;
  good: RecipientKeys;
  signOnly: RecipientKeys;
}

/** Registers the file's beforeAll/afterAll; the fields are set once beforeAll ran. */
export function useChainFailureSetup(
  prefix: string,
  prepare?: (cluster: TestCluster) => Promise<void>,
): ChainFailureSetup {
  const setup = {} as ChainFailureSetup;
  let key: TestKey | undefined;
  beforeAll(async () => {
    setup.dir = await mkdtemp(join(tmpdir(), prefix));
    setup.cluster = await startCluster();
    await prepare?.(setup.cluster);
    key = await createTestKey();
    Object.assign(setup, await testRecipients(key, setup.dir));
  }, 120_000);
  afterAll(async () => {
    await setup.cluster?.stop();
    await key?.remove();
    if (setup.dir) await rm(setup.dir, { recursive: true, force: true });
  });
  return setup;
}

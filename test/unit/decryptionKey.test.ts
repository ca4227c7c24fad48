// The worker's decryption key comes from one place: a named passphraseEnv that is not set fails at
// once with KeyUnreadable naming the variable (not later inside gpg as a bad passphrase), in PITR's
// staging of an encrypted base backup as in verify and the WAL archive's readers.
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClusterActivities, type RecoveryPlan } from '../../src/activities/pitr/index.js';
import { ErrorType } from '../../src/lib/errors.js';
import type { BaseManifest } from '../../src/lib/manifest.js';
import { openWalDecryption } from '../../src/storage/walArchive.js';
import { backupDecryptionKey, decryptionKey } from '../../src/stream/decryptionKey.js';
import { testConfig } from '../helpers/config.js';
import type { TestKey } from '../helpers/gpg.js';

const KEY: TestKey = {
  home: '/nowhere',
  publicKeyFile: '/nowhere/public.asc',
  privateKeyFile: '/nowhere/private.asc',
  passphrase: 'unused',
  fingerprint: 'ABCD',
  decryptArgs: () => [],
  remove: async () => undefined,
};
const VARIABLE = 'PGWARDEN_TEST_PASSPHRASE';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-key-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const config = (key = true) =>
  testConfig({
    cluster: { host: '127.0.0.1', port: 5432, user: 'postgres', dataDir: join(dir, 'data') },
    repository: join(dir, 'repo'),
    taskQueue: 'key-test',
    key: key ? KEY : undefined,
  });

async function failure(run: () => Promise<unknown> | unknown): Promise<ApplicationFailure> {
  try {
    await run();
  } catch (err) {
    expect(err).toBeInstanceOf(ApplicationFailure);
    return err as ApplicationFailure;
  }
  throw new Error('expected a failure');
}

describe('decryptionKey', () => {
  it('returns the key file and the passphrase from the variable passphraseEnv names', () => {
    expect(decryptionKey(config(), { [VARIABLE]: 'secret' })).toEqual({
      file: KEY.privateKeyFile,
      passphrase: 'secret',
    });
  });

  it('fails with KeyUnreadable naming the variable when passphraseEnv is not set', async () => {
    const f = await failure(() => decryptionKey(config(), {}));
    expect(f.type).toBe(ErrorType.KeyUnreadable);
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toBe(`environment variable ${VARIABLE} (encryption.passphraseEnv) is not set`);
    expect((await failure(() => openWalDecryption(config(), {}))).message).toBe(f.message);
    // verify's restore and PITR's staging run on a worker, and say so, as verify always did.
    expect((await failure(() => backupDecryptionKey(config(), {}))).message).toBe(`${f.message} on this worker`);
  });

  it('has no key without encryption.privateKeyFile; an encrypted backup then says so', async () => {
    expect(decryptionKey(config(false), {})).toBeUndefined();
    const f = await failure(() => backupDecryptionKey(config(false), {}));
    expect(f.type).toBe(ErrorType.KeyUnreadable);
    expect(f.message).toBe('the backup is encrypted and this worker has no encryption.privateKeyFile');
  });

  it("fails PITR's staging of an encrypted base backup the same way, before gpg runs", async () => {
    const backupId = '20261122T030000Z';
    const backupDir = join(dir, 'repo', 'main', 'base', backupId);
    await mkdir(backupDir, { recursive: true });
    const manifest: BaseManifest = {
      format: 1,
      kind: 'base',
      cluster: 'main',
      backupId,
      serverVersion: '15.18',
      serverVersionNum: 150018,
      startedAt: '2026-11-22T03:00:00.000Z',
      finishedAt: '2026-11-22T03:10:00.000Z',
      bytes: 10,
      sha256: '0'.repeat(64),
      artifacts: [{ name: 'base.tar.zst.gpg', role: 'base', bytes: 10, sha256: '0'.repeat(64) }],
      compression: { algorithm: 'zstd', level: 1 },
      encryption: { format: 'openpgp', recipients: ['ABCD'] },
      verifications: [],
      pgwardenVersion: 'test',
      systemIdentifier: '1',
      timeline: 1,
      startLsn: '0/2000028',
      stopLsn: '0/2000100',
    };
    await writeFile(join(backupDir, 'manifest.json'), JSON.stringify(manifest));
    await writeFile(join(backupDir, 'base.tar.zst.gpg'), 'not really encrypted');
    // The data directory belongs to the PostgreSQL user, never root.
    await mkdir(join(dir, 'data'));
    if (process.getuid?.() === 0) await chown(join(dir, 'data'), 65534, 65534);
    const plan = {
      cluster: 'main',
      mode: 'rehearsal',
      backupId,
      dataDirectory: join(dir, 'data'),
      workDirectory: join(dir, 'work-abc'),
    } as RecoveryPlan;
    await mkdir(plan.workDirectory);
    const { stageBaseBackup } = createClusterActivities({ config: config(), env: {} });
    const f = await failure(() => new MockActivityEnvironment().run(stageBaseBackup, plan));
    expect(f.type).toBe(ErrorType.KeyUnreadable);
    expect(f.message).toBe(`environment variable ${VARIABLE} (encryption.passphraseEnv) is not set on this worker`);
  });
});

// baseBackup's chain (pg_basebackup | zstd → gpg --encrypt, sha256 → the stored tar; postgres/
// baseStream.ts) against a real PostgreSQL 15 and stock gpg, when one part fails: the failure
// reported is the cause, not the broken pipes it leaves in the other processes (the judgement
// fullBackup's dump makes too: stream/failureCause.ts). A key gpg cannot use is a non-retryable key
// error naming gpg (before: "pg_basebackup failed (signal SIGPIPE)", retried); a store that cannot
// write is a retryable storage error (before: pg_basebackup's SIGPIPE); pg_basebackup failing on its
// own is still named.
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { expect, it } from 'vitest';
import { startBaseStream } from '../../src/postgres/baseStream.js';
import { Sha256Stage, type RecipientKeys } from '../../src/stream/pipeline.js';
import { useChainFailureSetup } from '../helpers/chainFailures.js';
import { PG_BIN } from '../helpers/require.js';

const setup = useChainFailureSetup('pgwarden-basefail-');

/** The chain as createBaseBackup starts it (a cluster's ~30 MB tar: more than the pipes hold), failing. */
async function base(options: { recipients: RecipientKeys; path?: string; env?: Record<string, string> }) {
  const chain = startBaseStream({
    command: join(PG_BIN, 'pg_basebackup'),
    args: ['--pgdata=-', '--format=tar', '--wal-method=none', '--checkpoint=fast', '--no-password'],
    env: options.env ?? setup.cluster.env(),
    compression: { algorithm: 'zstd', level: 1 },
    recipients: options.recipients,
    path: options.path ?? join(setup.dir, `base-${Date.now()}.tar.zst.gpg`),
    signal: new AbortController().signal,
    stored: new Sha256Stage(),
  });
  return chain.result.then(
    () => {
      throw new Error('the base backup succeeded');
    },
    (err: unknown) => err as ApplicationFailure,
  );
}

it('a key gpg cannot use: a non-retryable key error naming gpg, not pg_basebackup', async () => {
  const err = await base({ recipients: setup.signOnly });
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err.message).toMatch(/^gpg --encrypt failed .*Unusable public key/);
  expect(err.type).toBe('KeyUnreadable');
  expect(err.nonRetryable).toBe(true);
});

it("a store that cannot write (its directory gone): a retryable storage error, not pg_basebackup's", async () => {
  const err = await base({ recipients: setup.good, path: join(setup.dir, 'gone', 'base.tar.zst.gpg') });
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err.message).toMatch(/^storing .*gone\/base\.tar\.zst\.gpg failed: ENOENT/);
  expect(err.type).toBe('RepositoryUnavailable');
  expect(err.nonRetryable).toBe(false);
});

it('pg_basebackup failing on its own (a port nobody listens on) is still named pg_basebackup', async () => {
  const err = await base({ recipients: setup.good, env: { ...setup.cluster.env(), PGPORT: '1' } });
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err.message).toMatch(/^pg_basebackup failed .*(connection|connect)/i);
  expect(err.type).toBe('DumpFailed');
});

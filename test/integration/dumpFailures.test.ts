// fullBackup's dump chain (pg_dump | zstd | tee | gpg --encrypt → the stored file) against a real
// PostgreSQL 15 and stock gpg, when one part fails: the failure reported is the cause, not the broken
// pipes it leaves in the other processes. A key gpg cannot use is a non-retryable key error naming
// gpg (not "pg_dump failed"); a store that cannot write is a retryable storage error (not a key
// error); pg_dump failing on its own is still named; and nothing is started when gpg's keys cannot
// even be written.
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import * as openpgp from 'openpgp';
import { expect, it } from 'vitest';
import { dumpDatabase } from '../../src/postgres/dump.js';
import { Sha256Stage, type RecipientKeys } from '../../src/stream/pipeline.js';
import { useChainFailureSetup } from '../helpers/chainFailures.js';
import { PG_BIN } from '../helpers/require.js';
import pg from 'pg';

const setup = useChainFailureSetup('pgwarden-dumpfail-', async (c) => {
  await c.query('CREATE DATABASE app');
  // ~13 MB that zstd halves at most: more than every pipe between the processes holds, so a process
  // that dies early leaves the others writing into closed pipes.
  await c.query(
    'CREATE TABLE blob AS SELECT g, md5(random()::text) || md5(random()::text) AS t FROM generate_series(1, 200000) g',
    'app',
  );
});

/** dumpDatabase of `app` as fullBackup runs it (zstd, gpg), in a transaction that exported its snapshot. */
async function dump(options: {
  recipients?: RecipientKeys;
  path?: string;
  database?: string;
  /** Runs after the failure, while the snapshot's transaction is still open. */
  then?: () => Promise<void>;
}) {
  const client = new pg.Client({
    host: setup.cluster.host,
    port: setup.cluster.port,
    user: setup.cluster.user,
    password: setup.cluster.password,
    database: 'app',
  });
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const { rows } = await client.query<{ s: string }>('SELECT pg_export_snapshot() AS s');
    return await dumpDatabase({
      client,
      snapshot: rows[0]!.s,
      path: options.path ?? join(setup.dir, `dump-${Date.now()}.pgdump.zst.gpg`),
      name: 'dump.pgdump.zst.gpg',
      tool: (name) => join(PG_BIN, name),
      env: setup.cluster.env(options.database ?? 'app'),
      compression: { algorithm: 'zstd', level: 1 },
      recipients: options.recipients,
      signal: new AbortController().signal,
      stored: new Sha256Stage(),
    }).then(
      () => {
        throw new Error('the dump succeeded');
      },
      async (err: unknown) => {
        await options.then?.();
        return err as ApplicationFailure;
      },
    );
  } finally {
    await client.end();
  }
}

it('a key gpg cannot use: a non-retryable key error naming gpg, not pg_dump', async () => {
  const err = await dump({ recipients: setup.signOnly });
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err.message).toMatch(/^gpg --encrypt failed .*Unusable public key/);
  expect(err.type).toBe('KeyUnreadable');
  expect(err.nonRetryable).toBe(true);
});

it("a store that cannot write (its directory gone): a retryable storage error, not the key's", async () => {
  const path = join(setup.dir, 'gone', 'dump.pgdump.zst.gpg');
  const err = await dump({ recipients: setup.good, path });
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err.message).toMatch(/^storing .*gone\/dump\.pgdump\.zst\.gpg failed: ENOENT/);
  expect(err.type).toBe('RepositoryUnavailable');
  expect(err.nonRetryable).toBe(false);
});

it('pg_dump failing on its own (no such database) is still named pg_dump', async () => {
  const err = await dump({ recipients: setup.good, database: 'nosuchdb' });
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err.message).toMatch(/^pg_dump failed .*"nosuchdb" does not exist/);
  expect(err.type).toBe('DumpFailed');
});

it('keys gpg cannot be given: nothing started, no pg_dump left holding a snapshot', async () => {
  const unwritable = {
    armor: () => {
      throw new Error('no armor');
    },
  } as unknown as openpgp.PublicKey;
  let dumping: unknown[] = [];
  const err = await dump({
    recipients: { keys: [unwritable], fingerprints: ['x'] },
    // The snapshot stays exported as long as a slow activity would keep it: time for a pg_dump that
    // was started to connect and take it.
    then: async () => {
      await new Promise((r) => setTimeout(r, 1500));
      dumping = await setup.cluster.query("SELECT pid FROM pg_stat_activity WHERE application_name = 'pg_dump'");
    },
  });
  expect((err as Error).message).toBe('no armor');
  expect(dumping).toEqual([]);
});

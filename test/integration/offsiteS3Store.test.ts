// The S3 offsite driver against a real S3-compatible server (versitygw): a probe that names what is
// wrong without leaking secrets, streamed multipart uploads with their sha256 recorded, read-back
// that sees a flipped byte, and an outage mid-upload that is retryable and leaves nothing half-made.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Store } from '../../src/storage/s3.js';
import type { Storage } from '../../src/storage/storage.js';
import { s3RepositorySchema, type S3RepositoryConfig } from '../../src/config/repositories.js';
import { ErrorType } from '../../src/lib/errors.js';
import { startS3Server, type S3Server } from '../helpers/s3.js';

const BUCKET = 'pgwarden-offsite';
const PREFIX = 'site-a';
const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: S3Server;
let dir: string;

beforeAll(async () => {
  [server, dir] = await Promise.all([startS3Server(), mkdtemp(join(tmpdir(), 'pgwarden-s3store-'))]);
  await server.bucket(BUCKET);
});

afterAll(async () => {
  await Promise.all([server?.destroy(), dir && rm(dir, { recursive: true, force: true })]);
});

function repo(over: Record<string, unknown> = {}): S3RepositoryConfig {
  return s3RepositorySchema.parse({
    type: 's3',
    bucket: BUCKET,
    prefix: PREFIX,
    endpoint: server.endpoint,
    forcePathStyle: true,
    accessKeyIdEnv: 'OFFSITE_KEY_ID',
    secretAccessKeyEnv: 'OFFSITE_SECRET',
    storageClass: { wal: 'STANDARD_IA' },
    ...over,
  });
}

const secrets = (over: Record<string, string> = {}) => ({
  OFFSITE_KEY_ID: server.accessKey,
  OFFSITE_SECRET: server.secretKey,
  ...over,
});

async function withStore<T>(fn: (store: Storage) => Promise<T>, config = repo(), env = secrets()): Promise<T> {
  const store = createS3Store('remote', config, env);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ApplicationFailure);
  return e as ApplicationFailure;
}

async function localFile(name: string, bytes: number): Promise<{ path: string; bytes: number; sha256: string }> {
  const data = randomBytes(bytes);
  const path = join(dir, name);
  await writeFile(path, data);
  return { path, bytes, sha256: createHash('sha256').update(data).digest('hex') };
}

const BIG = 'main/base/20260101T000000Z/base.tar.zst.gpg';
const SMALL = 'main/wal/000000010000000000000001.zst.gpg';

describe('S3 offsite store', () => {
  it('probes a good repository', async () => {
    await withStore((s) => s.probe());
  });

  it('names the repository and the bucket when the bucket does not exist', async () => {
    const err = await failure(withStore((s) => s.probe(), repo({ bucket: 'no-such-bucket' })));
    expect(err.nonRetryable).toBe(true);
    expect(err.type).toBe(ErrorType.OffsiteMisconfigured);
    expect(err.message).toContain('offsite repository "remote" (s3://no-such-bucket/site-a/)');
    expect(err.message).toMatch(/bucket "no-such-bucket" does not exist/);
    expect(err.message).not.toContain(server.secretKey);
  });

  it('says the credentials are refused, without showing them', async () => {
    for (const env of [
      secrets({ OFFSITE_SECRET: 'wrong-secret-0123456789' }),
      secrets({ OFFSITE_KEY_ID: 'AKUNKNOWN000' }),
    ]) {
      const err = await failure(withStore((s) => s.probe(), repo(), env));
      expect(err.nonRetryable).toBe(true);
      expect(err.type).toBe(ErrorType.OffsiteMisconfigured);
      expect(err.message).toMatch(/offsite repository "remote".*credentials refused/);
      for (const secret of [env.OFFSITE_SECRET, server.secretKey]) expect(err.message).not.toContain(secret);
    }
    // A missing variable is named; its would-be value never appears.
    const err = await failure(
      Promise.resolve().then(() => createS3Store('remote', repo(), { OFFSITE_KEY_ID: server.accessKey })),
    );
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toMatch(/OFFSITE_SECRET.*not set/);
  });

  it('uploads (multipart for a large file), lists with sizes and recorded sha256, and reads content back', async () => {
    const big = await localFile('big', 40 * MiB + 12345);
    const small = await localFile('small', 1000);
    const seen: number[] = [];
    await withStore(async (s) => {
      await s.put(BIG, big.path, { bytes: big.bytes, sha256: big.sha256, kind: 'base' }, (b) => seen.push(b));
      await s.put(SMALL, small.path, { bytes: small.bytes, sha256: small.sha256, kind: 'wal' });

      const listed = await s.list('main/');
      expect([...listed.values()].sort((a, b) => a.key.localeCompare(b.key))).toEqual([
        { key: BIG, bytes: big.bytes, recordedSha256: big.sha256, storageClass: 'STANDARD' },
        { key: SMALL, bytes: small.bytes, recordedSha256: small.sha256, storageClass: 'STANDARD' },
      ]);
      expect((await s.list('main/wal/')).size).toBe(1);
      expect(await s.contentSha256([BIG, SMALL, 'main/wal/absent'])).toEqual(
        new Map([
          [BIG, big.sha256],
          [SMALL, small.sha256],
        ]),
      );
    });
    expect(seen.at(-1)).toBe(big.bytes);
    // A multipart upload's ETag ends in -<parts>: 8 MiB parts (the default), so 6 for 40 MiB and a bit.
    const client = new S3Client({
      endpoint: server.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: server.accessKey, secretAccessKey: server.secretKey },
    });
    const head = await client
      .send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}/${BIG}` }))
      .finally(() => client.destroy());
    expect(head.ETag).toMatch(/-6"$/);
    // Stored under the configured prefix, with the repository's layout.
    expect((await readFile(server.objectPath(BUCKET, `${PREFIX}/${SMALL}`))).length).toBe(small.bytes);
  });

  it('sees a flipped byte in the stored object', async () => {
    const file = await open(server.objectPath(BUCKET, `${PREFIX}/${BIG}`), 'r+');
    const byte = Buffer.alloc(1);
    await file.read(byte, 0, 1, 20 * MiB);
    byte[0]! ^= 0xff;
    await file.write(byte, 0, 1, 20 * MiB);
    await file.close();
    await withStore(async (s) => {
      const recorded = (await s.list('main/')).get(BIG)!.recordedSha256;
      const now = (await s.contentSha256([BIG])).get(BIG);
      expect(now).toMatch(/^[0-9a-f]{64}$/);
      expect(now).not.toBe(recorded);
    });
  });

  it('downloads an object as it is stored, and removes objects', async () => {
    const out = join(dir, 'downloaded');
    await withStore(async (s) => {
      let progress = 0;
      await s.get(SMALL, out, (b) => (progress = b));
      expect(await readFile(out)).toEqual(await readFile(join(dir, 'small')));
      expect(progress).toBe(1000);

      await s.remove([BIG, SMALL]);
      expect((await s.list('main/')).size).toBe(0);
    });
  });

  it('fails retryably when the server goes away mid-upload; the next attempt leaves exactly one good object', async () => {
    const big = await localFile('outage', 64 * MiB);
    const meta = { bytes: big.bytes, sha256: big.sha256, kind: 'base' as const };
    await withStore(async (s) => {
      let stopping: Promise<void> | undefined;
      const put = s.put(BIG, big.path, meta, () => (stopping ??= server.stop()));
      const err = await failure(put);
      await stopping;
      expect(err.nonRetryable).toBe(false);
      expect(err.type).toBe(ErrorType.OffsiteUnavailable);
      expect(err.message).toMatch(/offsite repository "remote".*cannot reach/);

      await server.start();
      await s.put(BIG, big.path, meta);
      const listed = await s.list('');
      expect([...listed.values()]).toEqual([
        { key: BIG, bytes: big.bytes, recordedSha256: big.sha256, storageClass: 'STANDARD' },
      ]);
      expect((await s.contentSha256([BIG])).get(BIG)).toBe(big.sha256);
    });
  });

  it('rides out a blip of the server mid-upload: the failed requests are sent again with a fresh read, one good object', async () => {
    const big = await localFile('blip', 24 * MiB);
    const key = 'main/base/20261122T050000Z/base.tar.zst';
    // Slowed to ~4 s, so the server is down and back while the upload is still going.
    await withStore(
      async (s) => {
        let blip: Promise<number> | undefined;
        await s.put(key, big.path, { bytes: big.bytes, sha256: big.sha256, kind: 'base' }, () => {
          blip ??= server
            .stop()
            .then(() => sleep(1000))
            .then(() => server.start())
            .then(() => Date.now());
        });
        const finishedAt = Date.now();
        // The one put outlived the outage: requests that met the stopped server were sent again.
        expect(finishedAt).toBeGreaterThan(await blip!);
        expect((await s.list('main/base/20261122T050000Z/')).get(key)).toEqual({
          key,
          bytes: big.bytes,
          recordedSha256: big.sha256,
          storageClass: 'STANDARD',
        });
        expect((await s.contentSha256([key])).get(key)).toBe(big.sha256);
      },
      repo({ maxRate: 6 * MiB }),
    );
  });
});

// S3 archive storage classes and failure causes, with a stubbed S3 client (versitygw's posix
// backend accepts StorageClass on PutObject but stores and reports STANDARD, and answers
// RestoreObject with 501 NotImplemented, so GLACIER behaviour cannot be tested against it).
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  RestoreObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { whenReadable } from '../../src/activities/offsite/archived.js';
import { createS3Store } from '../../src/storage/s3.js';
import type { Storage } from '../../src/storage/storage.js';
import { s3RepositorySchema } from '../../src/config/repositories.js';
import { planContentCheck } from '../../src/lib/offsite.js';
import { classifyS3Error, objectReadability } from '../../src/lib/s3Errors.js';

const s3Error = (name: string, status: number, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(name), { name, Code: name, $metadata: { httpStatusCode: status }, ...extra });

describe('classifyS3Error', () => {
  it('tells the real cause apart', () => {
    expect(classifyS3Error(s3Error('InvalidObjectState', 403))).toBe('archived'); // a 403, not credentials
    expect(classifyS3Error(s3Error('AccessDenied', 403))).toBe('credentials');
    expect(classifyS3Error(s3Error('SignatureDoesNotMatch', 403))).toBe('credentials');
    expect(classifyS3Error(s3Error('InvalidAccessKeyId', 403))).toBe('credentials');
    expect(classifyS3Error({ name: 'CredentialsProviderError' })).toBe('no-credentials');
    expect(classifyS3Error(s3Error('NoSuchBucket', 404))).toBe('no-bucket');
    expect(classifyS3Error({ name: 'NotFound', $metadata: { httpStatusCode: 404 } }, 'probe')).toBe('no-bucket');
    expect(classifyS3Error(s3Error('XAdminUserNotFound', 404), 'probe')).toBe('credentials');
    expect(classifyS3Error(s3Error('NoSuchKey', 404))).toBe('not-found');
    expect(classifyS3Error({ name: 'NotFound', $metadata: { httpStatusCode: 404 } }, 'read-back')).toBe('not-found');
    expect(classifyS3Error(s3Error('SlowDown', 503))).toBe('throttled');
    expect(classifyS3Error(s3Error('TooManyRequests', 429))).toBe('throttled');
    expect(classifyS3Error({ name: 'Error', code: 'ECONNREFUSED' })).toBe('network');
    expect(classifyS3Error({ name: 'TimeoutError' })).toBe('network');
    expect(classifyS3Error(s3Error('InternalError', 500))).toBe('server');
    expect(classifyS3Error(s3Error('RestoreAlreadyInProgress', 409))).toBe('restore-in-progress');
    expect(classifyS3Error({ name: 'Weird' })).toBe('other');
  });

  it('reads whether an object can be read from its HEAD answer', () => {
    expect(objectReadability({})).toBe('readable');
    expect(objectReadability({ StorageClass: 'STANDARD_IA' })).toBe('readable');
    expect(objectReadability({ StorageClass: 'GLACIER_IR' })).toBe('readable');
    expect(objectReadability({ StorageClass: 'GLACIER' })).toBe('archived');
    expect(objectReadability({ StorageClass: 'DEEP_ARCHIVE', Restore: 'ongoing-request="true"' })).toBe('restoring');
    expect(
      objectReadability({
        StorageClass: 'GLACIER',
        Restore: 'ongoing-request="false", expiry-date="Fri, 21 Dec 2026 00:00:00 GMT"',
      }),
    ).toBe('readable');
    expect(objectReadability({ StorageClass: 'INTELLIGENT_TIERING', ArchiveStatus: 'DEEP_ARCHIVE_ACCESS' })).toBe(
      'archived',
    );
  });
});

/** A bucket: STANDARD; GLACIER; DEEP_ARCHIVE being restored; DEEP_ARCHIVE whose restore another reader just asked for. */
function stubS3() {
  const restored = new Set<string>();
  const sent: string[] = [];
  const classes: Record<string, string> = {
    'main/a': 'STANDARD',
    'main/b': 'GLACIER',
    'main/c': 'DEEP_ARCHIVE',
    'main/d': 'DEEP_ARCHIVE',
  };
  vi.spyOn(S3Client.prototype, 'send').mockImplementation((async (command: unknown) => {
    if (command instanceof ListObjectsV2Command) {
      return { Contents: Object.entries(classes).map(([Key, StorageClass]) => ({ Key, Size: 5, StorageClass })) };
    }
    if (command instanceof HeadObjectCommand) {
      const key = command.input.Key!;
      sent.push(`head ${key}`);
      const sc = classes[key]!;
      const restore =
        key === 'main/c'
          ? 'ongoing-request="true"'
          : restored.has(key)
            ? 'ongoing-request="false", expiry-date="Fri, 21 Dec 2026 00:00:00 GMT"'
            : undefined;
      return {
        StorageClass: sc === 'STANDARD' ? undefined : sc,
        Restore: restore,
        Metadata: { sha256: 'f'.repeat(64) },
      };
    }
    if (command instanceof RestoreObjectCommand) {
      sent.push(
        `restore ${command.input.Key} ${command.input.RestoreRequest?.Days} ${command.input.RestoreRequest?.GlacierJobParameters?.Tier}`,
      );
      if (command.input.Key === 'main/d') throw s3Error('RestoreAlreadyInProgress', 409);
      return {};
    }
    if (command instanceof GetObjectCommand) throw s3Error('InvalidObjectState', 403);
    throw new Error(`unexpected ${String(command)}`);
  }) as never);
  const store = createS3Store(
    'glacier',
    s3RepositorySchema.parse({ type: 's3', bucket: 'bucket', endpoint: 'http://127.0.0.1:1', restoreTier: 'Bulk' }),
    {},
  );
  return { store, sent, restored };
}

afterEach(() => vi.restoreAllMocks());

describe('the S3 driver and archive storage classes (stubbed client)', () => {
  it('lists each object with its storage class and recorded sha256', async () => {
    const { store } = stubS3();
    const listed = await store.list('main/');
    expect([...listed.values()].map((e) => [e.key, e.storageClass, e.recordedSha256?.length])).toEqual([
      ['main/a', 'STANDARD', 64],
      ['main/b', 'GLACIER', 64],
      ['main/c', 'DEEP_ARCHIVE', 64],
      ['main/d', 'DEEP_ARCHIVE', 64],
    ]);
  });

  it('asks S3 to restore archived objects only, treats a restore under way as pending', async () => {
    const { store, sent, restored } = stubS3();
    expect(await store.prepareRead!(['main/a', 'main/b', 'main/c', 'main/d'], 3)).toEqual({
      pending: ['main/b', 'main/c', 'main/d'],
    });
    expect(sent.filter((s) => s.startsWith('restore'))).toEqual(['restore main/b 3 Bulk', 'restore main/d 3 Bulk']);
    // Once S3 has restored it (Restore: ongoing-request="false"), it is readable and not asked for again.
    restored.add('main/b');
    const again = await store.prepareRead!(['main/b'], 3);
    expect(again).toEqual({ pending: [] });
    expect(sent.filter((s) => s.startsWith('restore'))).toHaveLength(2);
  });

  it('reports GetObject of an archived object as archived, not as refused credentials, and does not retry it', async () => {
    const { store } = stubS3();
    const err = await store.get('main/b', '/nonexistent/x').then(
      () => undefined,
      (e: unknown) => e as { message: string; nonRetryable: boolean },
    );
    expect(err?.message).toMatch(/archive storage class/);
    expect(err?.message).not.toMatch(/credentials/);
    expect(err?.nonRetryable).toBe(true);
  });
});

/**
 * An INTELLIGENT_TIERING bucket (all list as INTELLIGENT_TIERING): `hot` is readable, `deep` is in
 * Deep Archive Access (HEAD says so), `moved` went to Archive Access after its HEAD (GetObject alone says so).
 */
function stubTiering() {
  const tiers: Record<string, string | undefined> = {
    'main/hot': undefined,
    'main/deep': 'DEEP_ARCHIVE_ACCESS',
    'main/moved': undefined,
  };
  const got: string[] = [];
  vi.spyOn(S3Client.prototype, 'send').mockImplementation((async (command: unknown) => {
    if (command instanceof ListObjectsV2Command) {
      return { Contents: Object.keys(tiers).map((Key) => ({ Key, Size: 5, StorageClass: 'INTELLIGENT_TIERING' })) };
    }
    if (command instanceof HeadObjectCommand) {
      const tier = tiers[command.input.Key!];
      return {
        StorageClass: 'INTELLIGENT_TIERING',
        ...(tier ? { ArchiveStatus: tier } : {}),
        Metadata: { sha256: 'f'.repeat(64) },
      };
    }
    if (command instanceof GetObjectCommand) {
      got.push(command.input.Key!);
      if (command.input.Key === 'main/hot') return { Body: Readable.from([Buffer.from('hello')]) };
      throw s3Error('InvalidObjectState', 403);
    }
    throw new Error(`unexpected ${String(command)}`);
  }) as never);
  const store = createS3Store(
    'tiering',
    s3RepositorySchema.parse({ type: 's3', bucket: 'bucket', endpoint: 'http://127.0.0.1:1' }),
    {},
  );
  return { store, got };
}

describe('Intelligent-Tiering archive tiers (stubbed client)', () => {
  it('lists the archive tier from HEAD, so the check does not read those objects back', async () => {
    const { store } = stubTiering();
    const listed = await store.list('main/');
    expect([...listed.values()].map((e) => [e.key, e.storageClass, e.archiveStatus])).toEqual([
      ['main/hot', 'INTELLIGENT_TIERING', undefined],
      ['main/deep', 'INTELLIGENT_TIERING', 'DEEP_ARCHIVE_ACCESS'],
      ['main/moved', 'INTELLIGENT_TIERING', undefined],
    ]);
    const plan = planContentCheck(listed, 'all');
    expect([[...plan.read], [...plan.archived]]).toEqual([['main/hot', 'main/moved'], ['main/deep']]);
  });

  it('read-back hands an object S3 refuses as archived (InvalidObjectState) to the archived path instead of failing', async () => {
    const { store, got } = stubTiering();
    const archived: string[] = [];
    const sums = await store.contentSha256(['main/hot', 'main/moved'], undefined, (key) => archived.push(key));
    expect(got.sort()).toEqual(['main/hot', 'main/moved']);
    expect([...sums]).toEqual([['main/hot', createHash('sha256').update('hello').digest('hex')]]);
    expect(archived).toEqual(['main/moved']);
    // A caller that cannot take the archived path still hears why, non-retryably.
    const err = await store.contentSha256(['main/moved']).then(
      () => undefined,
      (e: unknown) => e as { message: string; nonRetryable: boolean },
    );
    expect(err?.message).toMatch(/archive storage class/);
    expect(err?.nonRetryable).toBe(true);
  });
});

describe('whenReadable: restore from offsite waits for archived objects, with a bound', () => {
  const fakeStore = (readyAfterPolls: number) => {
    let polls = 0;
    const asked: string[][] = [];
    const store = {
      name: 'glacier',
      features: { archiveClasses: true },
      async prepareRead(keys: string[]) {
        asked.push(keys);
        return { pending: polls++ >= readyAfterPolls ? [] : keys.filter((k) => k !== 'ready') };
      },
    } as unknown as Storage;
    return { store, asked };
  };

  it('polls until every restore is done, asking again only about the pending ones', async () => {
    const { store, asked } = fakeStore(2);
    const slept: number[] = [];
    const pending: number[] = [];
    await whenReadable(store, ['ready', 'x', 'y'], {
      days: 3,
      maxWaitMs: 3_600_000,
      pollMs: 60_000,
      sleep: async (ms) => void slept.push(ms),
      onPending: (n) => pending.push(n),
    });
    expect(asked).toEqual([
      ['ready', 'x', 'y'],
      ['x', 'y'],
      ['x', 'y'],
    ]);
    expect(slept).toEqual([60_000, 60_000]);
    expect(pending).toEqual([2, 2]);
  });

  it('fails non-retryably once the bound has passed, naming what is still archived', async () => {
    const { store } = fakeStore(1_000);
    const err = await whenReadable(store, ['x'], {
      days: 3,
      maxWaitMs: 150,
      pollMs: 60,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    }).then(
      () => undefined,
      (e: unknown) => e as { message: string; nonRetryable: boolean },
    );
    expect(err?.message).toMatch(/1 object\(s\) still being restored .* \(first: x\)/);
    expect(err?.nonRetryable).toBe(true);
  });

  it('does nothing for a store without archive classes (rsync)', async () => {
    await whenReadable({ name: 'rsync', features: { archiveClasses: false } } as Storage, ['x'], {
      days: 3,
      maxWaitMs: 0,
      pollMs: 1,
    });
  });
});

describe('offsite repository config', () => {
  it('fills the tiers not given from the offsite defaults, keeps an old retentionDays, and bounds the restore wait', () => {
    const base = { type: 's3', bucket: 'bucket' };
    expect(s3RepositorySchema.parse({ ...base, retention: { weekly: 4 } }).retention).toEqual({
      daily: 30,
      weekly: 4,
      monthly: 12,
      yearly: 0,
      minimum: 3,
    });
    const old = s3RepositorySchema.parse({ ...base, retentionDays: 90 });
    expect(old).toMatchObject({ retentionDays: 90, restoreTier: 'Standard', restoreDays: 3, restoreWaitHours: 20 });
    expect(old.retention).toBeUndefined();
    expect(() => s3RepositorySchema.parse({ ...base, restoreWaitHours: 30 })).toThrow(); // beyond the activity's 24 h
  });
});

// The S3 driver of the storage interface (storage.ts) (AWS S3 or an S3-compatible server such as versitygw or Ceph RGW).
// Every transfer is streamed (rule 6): uploads read each part straight from the file (s3Upload.ts,
// `partSizeMiB` parts, two in flight); downloads and read-back hashing consume the response body
// as it arrives.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  paginateListObjectsV2,
  RestoreObjectCommand,
  type StorageClass,
} from '@aws-sdk/client-s3';
import type { S3RepositoryConfig } from '../config/repositories.js';
import { ErrorType, retryable } from '../lib/errors.js';
import { mapLimit } from '../lib/mapLimit.js';
import { classifyS3Error, objectReadability } from '../lib/s3Errors.js';
import { streamed } from '../stream/memory.js';
import { connectS3 } from './s3Client.js';
import { uploadFile } from './s3Upload.js';
import type { Storage, RemoteEntry } from './storage.js';

const DELETE_BATCH = 1000; // the most DeleteObjects accepts

export function createS3Store(name: string, config: S3RepositoryConfig, env: NodeJS.ProcessEnv): Storage {
  const { Bucket, prefix, label, client, uploadClient, failure, attempt } = connectS3(name, config, env);

  /**
   * Multipart uploads of this key left by an earlier attempt (the server died, so their abort did
   * too): aborted before a new one starts, so their parts neither linger nor bill. The key itself
   * is absent (sync uploads only missing keys), so no upload of it can be a finished one.
   */
  async function abortStaleUploads(fullKey: string): Promise<void> {
    const { Uploads = [] } = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: fullKey }));
    for (const u of Uploads.filter((u) => u.Key === fullKey && u.UploadId)) {
      await client.send(new AbortMultipartUploadCommand({ Bucket, Key: fullKey, UploadId: u.UploadId }));
    }
  }

  const getBody = async (key: string): Promise<Readable> => {
    const res = await client.send(new GetObjectCommand({ Bucket, Key: prefix + key }));
    return res.Body as Readable;
  };

  return {
    name,
    type: 's3',
    features: { batch: false, archiveClasses: true, recordsSha256: true, localPath: false },

    async probe() {
      try {
        await client.send(new HeadBucketCommand({ Bucket }));
      } catch (e) {
        // A HEAD error has no body, so no S3 error code (versitygw even answers 404 for an unknown
        // access key): ask again with a GET whose answer names the cause.
        if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== undefined) {
          await attempt('probe', () => client.send(new ListObjectsV2Command({ Bucket, MaxKeys: 1 })));
        }
        throw failure(e, 'probe');
      }
    },

    list(listPrefix) {
      return attempt('list', async () => {
        const objects: { key: string; bytes: number; storageClass?: string }[] = [];
        for await (const page of paginateListObjectsV2({ client }, { Bucket, Prefix: prefix + listPrefix })) {
          for (const o of page.Contents ?? [])
            objects.push({ key: o.Key!.slice(prefix.length), bytes: o.Size ?? 0, storageClass: o.StorageClass });
        }
        // HEAD answers for archived objects too: the recorded sha256 is always there to check. It
        // also names INTELLIGENT_TIERING's archive tiers (ArchiveStatus), which the listing does not.
        const entries = await mapLimit(objects, 8, async ({ key, bytes, storageClass }): Promise<RemoteEntry> => {
          const head = await client.send(new HeadObjectCommand({ Bucket, Key: prefix + key }));
          const archiveStatus = head.ArchiveStatus;
          return {
            key,
            bytes,
            recordedSha256: head.Metadata?.sha256,
            ...(storageClass ? { storageClass } : {}),
            ...(archiveStatus ? { archiveStatus } : {}),
          };
        });
        return new Map(entries.map((e) => [e.key, e]));
      });
    },

    put(key, localFile, meta, progress) {
      return attempt('upload', async () => {
        await abortStaleUploads(prefix + key);
        await uploadFile({
          client: uploadClient,
          bucket: Bucket,
          key: prefix + key,
          file: localFile,
          bytes: meta.bytes,
          // S3 allows 10,000 parts: a very large dump gets larger parts rather than failing.
          partSize: Math.max(config.partSizeMiB * 1024 * 1024, Math.ceil(meta.bytes / 9_000)),
          metadata: { sha256: meta.sha256 },
          storageClass: config.storageClass[meta.kind] as StorageClass | undefined,
          maxRate: config.maxRate,
          transient: (e) => !failure(e, 'upload').nonRetryable,
          progress,
        });
      });
    },

    contentSha256(keys, progress, onArchived) {
      return attempt('read-back', async () => {
        let total = 0;
        const sums = await mapLimit(keys, 2, async (key): Promise<[string, string] | undefined> => {
          let body: Readable;
          try {
            body = await getBody(key);
          } catch (e) {
            if ((e as { name?: string }).name === 'NoSuchKey') return undefined;
            // Archived since it was listed (or in a tier the listing did not show): the caller
            // holds it to its size and recorded sha256 instead of failing every check from now on.
            if (onArchived && classifyS3Error(e as object) === 'archived') {
              onArchived(key);
              return undefined;
            }
            throw e;
          }
          const hash = createHash('sha256');
          for await (const chunk of body) {
            hash.update(chunk as Buffer);
            total += (chunk as Buffer).length;
            streamed((chunk as Buffer).length);
            progress?.(total);
          }
          return [key, hash.digest('hex')];
        });
        return new Map(sums.filter((s) => s !== undefined));
      });
    },

    get(key, localFile, progress) {
      return attempt('download', async () => {
        const body = await getBody(key);
        let total = 0;
        const count = async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            progress?.((total += chunk.length));
            streamed(chunk.length);
            yield chunk;
          }
        };
        await pipeline(body, count, createWriteStream(localFile));
        const file = await open(localFile, 'r+');
        try {
          await file.sync(); // the caller renames it into place: the bytes must be on disk first
        } finally {
          await file.close();
        }
      });
    },

    prepareRead(keys, days) {
      return attempt('restore from archive', async () => {
        const states = await mapLimit(keys, 8, async (key): Promise<'readable' | 'restoring'> => {
          const head = await client.send(new HeadObjectCommand({ Bucket, Key: prefix + key }));
          const state = objectReadability(head);
          if (state !== 'archived') return state;
          try {
            // Intelligent-Tiering's archive tiers take no Days; the archive classes require it.
            const RestoreRequest = head.ArchiveStatus
              ? {}
              : { Days: days, GlacierJobParameters: { Tier: config.restoreTier } };
            await client.send(new RestoreObjectCommand({ Bucket, Key: prefix + key, RestoreRequest }));
          } catch (e) {
            if (classifyS3Error(e as object) !== 'restore-in-progress') throw e;
          }
          return 'restoring';
        });
        return { pending: keys.filter((_, i) => states[i] === 'restoring') };
      });
    },

    remove(keys) {
      return attempt('remove', async () => {
        for (let i = 0; i < keys.length; i += DELETE_BATCH) {
          const batch = keys.slice(i, i + DELETE_BATCH);
          const res = await client.send(
            new DeleteObjectsCommand({
              Bucket,
              Delete: { Objects: batch.map((k) => ({ Key: prefix + k })), Quiet: true },
            }),
          );
          // DeleteObjects answers 200 even when some keys failed; the failures are in the body.
          const failed = res.Errors ?? [];
          if (failed.length > 0) {
            const first = failed[0]!;
            throw retryable(
              ErrorType.OffsiteUnavailable,
              `${label}: could not remove ${failed.length} object(s), first ${first.Key}: ${first.Code} ${first.Message ?? ''}`,
            );
          }
        }
      });
    },

    async close() {
      client.destroy();
      uploadClient.destroy();
    },
  };
}

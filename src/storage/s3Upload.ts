// Uploads a local file to S3 with every request's body read straight from the file: one range
// per multipart part, so no part is ever copied into memory (lib-storage's Upload buffers each
// part). A request that fails is sent again with a fresh read of its range: the SDK cannot resend
// a stream it has consumed, so the client given here has its own retries off (maxAttempts 1).
import { createReadStream } from 'node:fs';
import { pipeline, Transform, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { mapLimit } from '../lib/mapLimit.js';
import { RateLimit } from '../stream/pipeline.js';
import { streamed } from '../stream/memory.js';

export interface FileUpload {
  /** A client with maxAttempts 1: the retries are here, each with a fresh body. */
  client: S3Client;
  bucket: string;
  key: string;
  file: string;
  bytes: number;
  partSize: number;
  metadata: Record<string, string>;
  storageClass?: StorageClass;
  /** Bytes per second for the whole upload (then one part at a time). */
  maxRate?: number;
  /** Whether a failed request is worth sending again (network trouble, 5xx). */
  transient(err: unknown): boolean;
  /** Bytes read from the file so far (a resent part counts from zero again). */
  progress?(bytes: number): void;
}

const ATTEMPTS = 3;
const PARTS_IN_FLIGHT = 2;

export async function uploadFile(u: FileUpload): Promise<void> {
  const target = { Bucket: u.bucket, Key: u.key };
  const sent = new Map<number, number>();
  const report = () => u.progress?.([...sent.values()].reduce((a, b) => a + b, 0));

  /** A fresh read of [start, start + length) that counts what the request consumed. */
  const body = (part: number, start: number, length: number): Readable | string => {
    sent.set(part, 0);
    if (length === 0) return '';
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        sent.set(part, (sent.get(part) ?? 0) + chunk.length);
        report();
        streamed(chunk.length);
        done(null, chunk);
      },
    });
    const file = createReadStream(u.file, { start, end: start + length - 1 });
    // pipeline destroys every stage when one fails; the request sees the error on `counter`.
    return (
      u.maxRate
        ? pipeline(file, new RateLimit(u.maxRate), counter, () => undefined)
        : pipeline(file, counter, () => undefined)
    ) as Readable;
  };

  /** Sends a request, again on a transient failure; each try gets a fresh body, closed afterwards. */
  const send = async <T>(
    request: (body?: Readable | string) => Promise<T>,
    range?: { part: number; start: number; length: number },
  ): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      // A request that failed before reading its body would leave the file open.
      const b = range && body(range.part, range.start, range.length);
      try {
        return await request(b);
      } catch (err) {
        if (attempt >= ATTEMPTS || !u.transient(err)) throw err;
        await new Promise((r) => setTimeout(r, attempt * 1000));
      } finally {
        if (b && typeof b !== 'string') b.destroy();
      }
    }
  };

  const extras = { Metadata: u.metadata, StorageClass: u.storageClass };
  if (u.bytes <= u.partSize) {
    await send((b) => u.client.send(new PutObjectCommand({ ...target, ...extras, Body: b, ContentLength: u.bytes })), {
      part: 1,
      start: 0,
      length: u.bytes,
    });
    return;
  }

  // As lib-storage does: with the SDK computing CRC32s of the parts, the upload declares it.
  const checksum =
    (await u.client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED' ? ChecksumAlgorithm.CRC32 : undefined;
  const { UploadId } = await send(() =>
    u.client.send(new CreateMultipartUploadCommand({ ...target, ...extras, ChecksumAlgorithm: checksum })),
  );
  try {
    const count = Math.ceil(u.bytes / u.partSize);
    // Under a rate limit one part at a time, so the limit holds for the upload as a whole.
    const parts = await mapLimit(
      Array.from({ length: count }, (_, i) => i),
      u.maxRate ? 1 : PARTS_IN_FLIGHT,
      async (i): Promise<CompletedPart> => {
        const start = i * u.partSize;
        const length = Math.min(u.partSize, u.bytes - start);
        const r = await send(
          (b) =>
            u.client.send(
              new UploadPartCommand({ ...target, UploadId, PartNumber: i + 1, Body: b, ContentLength: length }),
            ),
          { part: i + 1, start, length },
        );
        if (!r.ETag) throw new Error(`part ${i + 1} has no ETag in the answer`);
        return {
          PartNumber: i + 1,
          ETag: r.ETag,
          ChecksumCRC32: r.ChecksumCRC32,
          ChecksumCRC32C: r.ChecksumCRC32C,
          ChecksumSHA1: r.ChecksumSHA1,
          ChecksumSHA256: r.ChecksumSHA256,
        };
      },
    );
    await send(() =>
      u.client.send(new CompleteMultipartUploadCommand({ ...target, UploadId, MultipartUpload: { Parts: parts } })),
    );
  } catch (err) {
    // No parts left behind (and billed); if the server is down too, the next attempt's
    // abortStaleUploads removes them.
    await u.client.send(new AbortMultipartUploadCommand({ ...target, UploadId })).catch(() => undefined);
    throw err;
  }
}

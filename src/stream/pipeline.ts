// One stream, many stages: the bytes a PostgreSQL tool writes pass once through compression,
// OpenPGP encryption and sha256 on their way to a `*.partial` file, which is fsynced and renamed.
// Memory stays bounded (stream backpressure end to end) and no plaintext touches the disk.
import { createHash } from 'node:crypto';
import { open, readFile, rename } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { PassThrough, Transform, type Duplex, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zlibConstants, createZstdCompress } from 'node:zlib';
import * as openpgp from 'openpgp';
import { gpgEncryptStage } from './gpgEncrypt.js';
import { streamed } from './memory.js';
import { ErrorType, nonRetryable } from '../lib/errors.js';
import { PARTIAL_SUFFIX } from '../lib/layout.js';
import { fsyncPath, inheritOwner, PRIVATE_FILE_MODE } from '../host/atomicFile.js';

export interface Compression {
  algorithm: 'zstd' | 'none';
  level?: number;
}

/** Counts the bytes that pass. */
export class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

/**
 * sha256 and size of the bytes that pass. Every chunk counts toward the next scavenge (memory.ts):
 * the stored bytes come from a pipe in fresh 64 KiB buffers, which would otherwise pile up.
 */
export class Sha256Stage extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    streamed(chunk.length);
    done(null, chunk);
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

/**
 * Caps throughput at `bytesPerSecond`, like pg_basebackup's --max-rate: a backup can be told to
 * leave disk and network bandwidth to production traffic. Backpressure carries the limit back to
 * the producer (pg_dump).
 */
export class RateLimit extends Transform {
  private readonly started = Date.now();
  private passed = 0;
  constructor(private readonly bytesPerSecond: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.passed += chunk.length;
    const due = this.started + (this.passed / this.bytesPerSecond) * 1000;
    const wait = due - Date.now();
    if (wait <= 0) return done(null, chunk);
    setTimeout(() => done(null, chunk), wait);
  }
}

export function compressStage(compression: Compression): Transform {
  if (compression.algorithm === 'none') return new PassThrough();
  // zlib's zstd runs on the libuv thread pool, beside the JavaScript thread doing the encryption.
  return createZstdCompress({
    chunkSize: 1 << 20,
    params: { [zlibConstants.ZSTD_c_compressionLevel]: compression.level ?? 1 },
  });
}

/**
 * A bounded buffer (16 MiB) between the producer and the compressor, so pg_dump keeps reading
 * while zstd works on the previous megabytes instead of the two taking turns at a 64 KiB pipe.
 */
export function bufferStage(bytes = 16 << 20): PassThrough {
  return new PassThrough({ highWaterMark: bytes });
}

export interface RecipientKeys {
  keys: openpgp.PublicKey[];
  fingerprints: string[];
}

/** Reads and checks the recipients' public keys: each must be readable and able to encrypt now. */
export async function loadRecipientKeys(paths: readonly string[]): Promise<RecipientKeys> {
  const keys: openpgp.PublicKey[] = [];
  for (const path of paths) {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw nonRetryable(
        ErrorType.KeyUnreadable,
        `encryption key ${path} is unreadable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    try {
      const text = bytes.toString('utf8');
      const key = text.includes('-----BEGIN PGP')
        ? await openpgp.readKey({ armoredKey: text })
        : await openpgp.readKey({ binaryKey: bytes });
      await key.getEncryptionKey(); // throws when expired, revoked, or without an encryption subkey
      keys.push(key.isPrivate() ? key.toPublic() : (key as openpgp.PublicKey));
    } catch (err) {
      throw nonRetryable(
        ErrorType.KeyUnreadable,
        `encryption key ${path} is not a usable OpenPGP public key: ${(err as Error).message}`,
      );
    }
  }
  return { keys, fingerprints: keys.map((k) => k.getFingerprint().toUpperCase()) };
}

/** OpenPGP encryption to the recipients as a stream stage: stock gpg in a child process (gpgEncrypt.ts). */
export function encryptStage(recipients: RecipientKeys, signal?: AbortSignal): Duplex {
  return gpgEncryptStage(
    recipients.keys.map((key) => key.armor()),
    signal,
  );
}

export interface FeedOptions {
  /** Bytes per second, at most. */
  maxRate?: number;
  /** Called after every chunk with the bytes read so far. */
  progress?: (bytes: number) => void;
  signal?: AbortSignal;
}

/**
 * Reads a file through one reused 1 MiB buffer, hashing it, into `sink` (or nowhere). No chunk is
 * left for the garbage collector: a verify of 300 MB through fresh stream buffers held ~100 MB of
 * spent buffers in the worker between collections. Each chunk is handed to the kernel (the write
 * callback) before the buffer is read into again.
 */
export async function feedFile(
  path: string,
  sink?: Writable,
  options: FeedOptions = {},
): Promise<{ sha256: string; bytes: number }> {
  const file = await open(path, 'r');
  const buffer = Buffer.allocUnsafe(1 << 20);
  const hash = createHash('sha256');
  const started = Date.now();
  let bytes = 0;
  let sinkError: Error | undefined;
  const onError = (err: Error) => (sinkError ??= err);
  sink?.on('error', onError);
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      hash.update(chunk);
      bytes += bytesRead;
      options.progress?.(bytes);
      if (options.maxRate) {
        const wait = started + (bytes / options.maxRate) * 1000 - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      if (sink) {
        await new Promise<void>((resolve, reject) => sink.write(chunk, (err) => (err ? reject(err) : resolve())));
        if (sinkError) throw sinkError;
      }
    }
    if (sink)
      await new Promise<void>((resolve, reject) => sink.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } finally {
    sink?.off('error', onError);
    await file.close();
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** sha256 and size of a file. */
export function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  return feedFile(path);
}

export interface StoredArtifact {
  bytes: number;
  sha256: string;
  /** Bytes before compression, when the compression ran in this process. */
  rawBytes?: number;
}

export interface StoreOptions {
  /** Compress in this process (zlib zstd); omit when the source is compressed already. */
  compression?: Compression;
  recipients?: RecipientKeys;
  signal?: AbortSignal;
  /** Throttle the stored stream to this many bytes per second. */
  maxRate?: number;
  /** The counters to use, so the caller can heartbeat their progress. */
  counters?: { raw?: ByteCounter; stored?: Sha256Stage };
}

/**
 * Streams `source` through (compression,) encryption and sha256 into `path`: written as
 * `path.partial`, fsynced, renamed, directory fsynced. A failure leaves only the partial file,
 * which the caller's directory cleanup removes.
 */
export async function storeArtifact(source: Readable, path: string, options: StoreOptions): Promise<StoredArtifact> {
  const raw = options.counters?.raw ?? new ByteCounter();
  const hash = options.counters?.stored ?? new Sha256Stage();
  const partial = path + PARTIAL_SUFFIX;
  const stages: NodeJS.ReadWriteStream[] = [raw];
  if (options.compression) stages.push(bufferStage(), compressStage(options.compression));
  if (options.recipients) stages.push(encryptStage(options.recipients, options.signal));
  if (options.maxRate) stages.push(new RateLimit(options.maxRate));
  stages.push(hash);
  await pipeline(
    [source, ...stages, createWriteStream(partial, { flags: 'wx', mode: PRIVATE_FILE_MODE })] as never,
    {
      signal: options.signal,
    } as never,
  );
  await fsyncPath(partial);
  await inheritOwner(partial);
  await rename(partial, path);
  await fsyncPath(dirname(path));
  return {
    bytes: hash.bytes,
    sha256: hash.digest(),
    ...(options.compression && options.compression.algorithm !== 'none' ? { rawBytes: raw.bytes } : {}),
  };
}

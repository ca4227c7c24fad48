// One interface for every repository (DESIGN.md, "one storage interface, several drivers"): the local
// directory (posix.ts), S3 (s3.ts) and rsync over ssh (rsync.ts), opened by type through registry.ts.
// Each driver declares what it supports (`features`), as pgBackRest's storage drivers do.
// Keys are the local repository's relative paths with '/' (`main/logical/app/<id>/dump.pgdump.zst.gpg`),
// so an offsite copy has the same layout as the local repository it came from.
//
// Append-only from pgwarden's side (DESIGN.md rule 7): sync only ever uploads (`put`, `putBatch`)
// keys the remote lacks, and `remove` is reserved for the remote's own retention policy (locally:
// the local retention policy).
import { join } from 'node:path';
import type { RemoteEntry } from '../lib/offsite.js';
import type { ObjectKind } from '../lib/offsiteKeys.js';

export type { RemoteEntry };

/** Progress of a long transfer, for heartbeats. */
export type TransferProgress = (bytes: number) => void;

/** A local file to upload, `<localRoot>/<key>`, with what it should be. */
export interface UploadObject {
  key: string;
  bytes: number;
  sha256: string;
  kind: ObjectKind;
}

export interface BatchOptions {
  /** The upload of `object` begins (in a batch: the first object of it), for heartbeats. */
  started?: (object: UploadObject) => void;
  progress?: TransferProgress;
  committed: (object: UploadObject) => void;
  /** Checked between objects (or batches): a cancelled run stops there. */
  signal?: AbortSignal;
}

/** What a driver can do beyond the common operations. */
export interface StorageFeatures {
  /** `putBatch`: many objects in a few round trips (rsync). */
  readonly batch: boolean;
  /** `prepareRead`: objects may sit in an archive storage class and need a restore before `get` (S3). */
  readonly archiveClasses: boolean;
  /**
   * `put` records the sha256 beside the object and `list` returns it (S3 metadata, rsync sidecar). The
   * local directory leaves that to the repository's own records (manifests, WAL records), so that its
   * on-disk layout stays what operators and `gpg --decrypt` read.
   */
  readonly recordsSha256: boolean;
  /** Keys are files under a local directory: tools (pg_restore, tar, the wal-push fast path) read them in place. */
  readonly localPath: boolean;
}

export interface Storage {
  /** The repository's name in the config; every error message names it. */
  readonly name: string;
  readonly type: 'local' | 's3' | 'rsync';
  readonly features: StorageFeatures;

  /** Fails with a clear non-retryable error when the remote cannot be used (unknown bucket, bad credentials, host key mismatch). */
  probe(): Promise<void>;

  /** Every object under `prefix` (a key prefix such as `main/`), with its size and recorded sha256. */
  list(prefix: string): Promise<Map<string, RemoteEntry>>;

  /**
   * Uploads a local file under `key`, streaming, with its sha256 recorded beside it. Written so that
   * a reader never sees a partial object under `key` (S3: multipart completes atomically; rsync:
   * partial-dir and rename). Safe to call again after a failure.
   */
  put(
    key: string,
    localFile: string,
    meta: { bytes: number; sha256: string; kind: ObjectKind },
    progress?: TransferProgress,
  ): Promise<void>;

  /**
   * Optional (rsync): uploads many files of `localRoot` (each at `<localRoot>/<key>`) in a few round
   * trips instead of one or two per object, with put's guarantees for each: it appears under its key
   * complete, with its sha256 recorded, in the order given (a backup's manifest after its artifacts),
   * and a key the remote has already is left as it is. `committed` is called for each object once it
   * is in place; `progress` counts the bytes sent of the objects not committed yet. Safe to call
   * again after a failure: it resumes. A driver that has it declares features.batch; without it, putAll
   * calls `put` per object.
   */
  putBatch?(localRoot: string, objects: readonly UploadObject[], options: BatchOptions): Promise<void>;

  /**
   * sha256 of each object's content as it is now, computed from its bytes (S3: read back; rsync: on
   * the remote host). An object S3 refuses as archived (InvalidObjectState) is passed to `onArchived`
   * and left out, instead of failing the call.
   */
  contentSha256(
    keys: string[],
    progress?: TransferProgress,
    onArchived?: (key: string) => void,
  ): Promise<Map<string, string>>;

  /** Downloads `key` to `localFile` (written as given; the caller renames it into place after checking). */
  get(key: string, localFile: string, progress?: TransferProgress): Promise<void>;

  /**
   * Makes objects readable before `get`: S3 asks for a restore of each one in an archive storage
   * class (GLACIER, DEEP_ARCHIVE) for `days`, and answers which are still being restored. Drivers
   * without archive classes (rsync) lack it: everything is readable.
   */
  prepareRead?(keys: string[], days: number): Promise<{ pending: string[] }>;

  /** Removes objects: remote retention only, never because of local state. */
  remove(keys: string[]): Promise<void>;

  /** Releases connections. */
  close(): Promise<void>;
}

/** Uploads `objects` (files under `localRoot`) in order: in batches where the driver has them, else one `put` each. */
export async function putAll(
  store: Storage,
  localRoot: string,
  objects: readonly UploadObject[],
  options: BatchOptions,
): Promise<void> {
  if (store.features.batch && store.putBatch) return store.putBatch(localRoot, objects, options);
  for (const object of objects) {
    if (options.signal?.aborted) throw new Error(`offsite repository "${store.name}": upload cancelled`);
    options.started?.(object);
    await store.put(object.key, join(localRoot, object.key), object, options.progress);
    options.committed(object);
  }
}

/**
 * A repository that pgwarden writes backups into and reads them back from (the local directory
 * today; a primary repository on object storage is the next driver): small objects such as
 * manifests and WAL records in memory, and the tree of backups.
 */
export interface RepositoryStorage extends Storage {
  /** A small object's bytes; fails when there is none (posix: ENOENT). */
  read(key: string): Promise<Buffer>;
  /** A small object's bytes, or undefined when there is none. */
  readIfExists(key: string): Promise<Buffer | undefined>;
  /** Writes a small object atomically: a reader sees the old content or the new, never part of it. */
  write(key: string, content: string | Buffer): Promise<void>;
  /** The names directly under `prefix` (a directory's entries), unsorted; none when it does not exist. */
  names(prefix: string, only?: 'dirs'): Promise<string[]>;
  /** Makes room for objects under `prefix` (posix: mkdir -p, private). */
  makeDir(prefix: string): Promise<void>;
  /** Removes `prefix` and everything under it: an uncommitted attempt, or what retention deletes. */
  removeTree(prefix: string): Promise<void>;
  /** The local path of `key` (features.localPath): where the pipeline writes and tools read. */
  pathOf(key: string): string;
}

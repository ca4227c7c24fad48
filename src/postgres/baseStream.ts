// The chain of a physical base backup: pg_basebackup (tar to stdout, WAL from the archive) → zstd
// (a kernel pipe) → this process, where the compressed tar passes through encryption and sha256
// into the repository and, on the way, into `zstd -d | tar -xO backup_manifest`, which both proves
// the tar reads back and yields PostgreSQL's backup_manifest (its WAL range and file checksums).
import type { Writable } from 'node:stream';
import { ErrorType, nonRetryable } from '../lib/errors.js';
import { chainFailed, failureCause } from '../stream/failureCause.js';
import { storeArtifact, type Compression, type RecipientKeys, type Sha256Stage } from '../stream/pipeline.js';
import { startTool, TOOL_ENV, type Tool } from '../stream/processes.js';
import { describeToolFailure, FeedWhileOpen } from './dump.js';

export interface BaseStreamArgs {
  /** pg_basebackup's path, its arguments and libpq environment (TOOL_ENV is added). */
  command: string;
  args: string[];
  env: Record<string, string>;
  compression: Compression;
  recipients?: RecipientKeys;
  /** Where the tar is stored. */
  path: string;
  signal: AbortSignal;
  maxRate?: number;
  stored: Sha256Stage;
}

export interface BaseStream {
  /** Stops pg_basebackup (a failure found beside it, reported by the caller). */
  kill(): void;
  /** The stored tar and its backup_manifest; rejects with the cause when a part failed. */
  result: Promise<{ bytes: number; sha256: string; backupManifest: string }>;
}

export function startBaseStream(a: BaseStreamArgs): BaseStream {
  const { signal } = a;
  const basebackup = startTool('pg_basebackup', a.command, a.args, { env: { ...TOOL_ENV, ...a.env }, signal });
  let source = basebackup.child.stdout!;
  let zstd: Tool | undefined;
  if (a.compression.algorithm === 'zstd') {
    zstd = startTool('zstd', 'zstd', [`-${a.compression.level}`, '-T0', '-c', '-q'], {
      stdin: source,
      env: TOOL_ENV,
      signal,
    });
    source.destroy();
    source = zstd.child.stdout!;
  }
  const extract = startManifestExtract(a.compression.algorithm === 'zstd', signal);
  const storing = storeArtifact(source.pipe(new FeedWhileOpen(extract.input)), a.path, {
    recipients: a.recipients,
    signal,
    maxRate: a.maxRate,
    counters: { stored: a.stored },
  });
  // A store that failed stops reading: close what feeds it, so zstd and pg_basebackup end (of the
  // broken pipe) instead of waiting, blocked, for a reader that is gone, and so does the extract.
  storing.catch(() => {
    source.destroy();
    extract.input.destroy();
  });
  const result = (async () => {
    const [b, z, stored] = await Promise.allSettled([basebackup.exited, zstd?.exited, storing]);
    // gpg runs inside the store: a key it refuses fails the store (KeyUnreadable), and pg_basebackup
    // and zstd die of the closed pipe after it.
    const outcome = { tools: [b, z], stored, path: a.path };
    if (chainFailed(outcome) || stored.status === 'rejected')
      throw failureCause(outcome, (err) => describeToolFailure(err));
    const backupManifest = await extract.manifest.catch((err: Error) => {
      throw nonRetryable(
        ErrorType.SanityCheckFailed,
        `the stored tar does not read back with its backup_manifest: ${err.message}`,
      );
    });
    return { ...stored.value, backupManifest };
  })();
  return { kill: () => basebackup.child.kill('SIGTERM'), result };
}

/** `zstd -d | tar -xO backup_manifest` over the stored (compressed) bytes, reading all of them. */
function startManifestExtract(
  compressed: boolean,
  signal: AbortSignal,
): { input: Writable; manifest: Promise<string> } {
  let tar: Tool;
  let input: Writable;
  if (compressed) {
    const unzstd = startTool('zstd -d', 'zstd', ['-d', '-c', '-q'], { stdin: 'pipe', env: TOOL_ENV, signal });
    tar = startTool('tar', 'tar', ['-xOf', '-', 'backup_manifest'], {
      stdin: unzstd.child.stdout!,
      env: TOOL_ENV,
      signal,
    });
    unzstd.child.stdout!.destroy();
    input = unzstd.child.stdin!;
    unzstd.exited.catch(() => undefined);
  } else {
    tar = startTool('tar', 'tar', ['-xOf', '-', 'backup_manifest'], { stdin: 'pipe', env: TOOL_ENV, signal });
    input = tar.child.stdin!;
  }
  input.on('error', () => undefined);
  const parts: Buffer[] = [];
  tar.child.stdout!.on('data', (d: Buffer) => parts.push(d));
  const manifest = tar.exited.then(() => Buffer.concat(parts).toString('utf8'));
  // Awaited only once storing succeeded: when storing fails first, tar's failure must not surface
  // as an unhandled rejection (it would take the worker down).
  manifest.catch(() => undefined);
  return { input, manifest };
}

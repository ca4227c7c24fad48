// wal-push, the archive_command: PostgreSQL starts it once per 16 MiB WAL segment and waits, so
// it loads Node built-ins only (no zod, openpgp or Temporal: those cost ~250 ms at every start)
// and encrypts with stock gpg straight to the recipients' public key files (no keyring import).
// zstd and gpg run as a process chain reading the segment's open file as stdin, started before
// this process reads it for the sha256, so their start-up and the compression overlap the hash.
//
// What it stores is what the rest of pgwarden reads (walArchive.ts): `<name>[.zst][.gpg]`, written
// as .partial, fsynced, renamed, then its record `<name>.json`, the commit marker.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, mkdtempSync, openSync, readSync } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorType } from '../lib/errorTypes.js';
import { artifactName, walRecordName } from '../lib/layout.js';
import { isWalFileName, WAL_SEGMENT_BYTES } from '../lib/wal.js';
import { mkdirPrivate, writeFileAtomic } from '../host/atomicFile.js';
import type { WalPushSettings } from './settings.js';
import { WalPushError } from './walPushError.js';

export interface PushResult {
  name: string;
  /** `stored`: written now; `identical`: already archived with the same content. */
  outcome: 'stored' | 'identical';
  bytes: number;
  /** sha256 of the original bytes. */
  rawSha256: string;
}

export { WalPushError };

/**
 * Success only once the file is durably stored and committed. Re-pushing the same content is
 * success (PostgreSQL retries after a crash); different content under an archived name is
 * refused, since it means two clusters share an archive or a timeline went wrong.
 */
export async function pushWalFile(
  settings: WalPushSettings,
  source: string,
  name: string,
  now = new Date(),
): Promise<PushResult> {
  if (!isWalFileName(name)) throw new WalPushError(ErrorType.InvalidInput, `"${name}" is not a WAL file name`);
  // One open file for both readers: the encoder reads it as its stdin, this process hashes it by
  // position; the sha256 recorded is of the very bytes stored.
  const fd = openSync(source, 'r');
  try {
    // The encoder processes start first: their start-up and the compression overlap the hash.
    const encoder = startEncoder(settings, fd);
    try {
      return await push(settings, fd, source, name, now, encoder);
    } finally {
      await encoder?.cancel(); // a no-op once they have finished
    }
  } finally {
    closeSync(fd);
  }
}

async function push(
  settings: WalPushSettings,
  fd: number,
  source: string,
  name: string,
  now: Date,
  encoder: Encoder | undefined,
): Promise<PushResult> {
  const before = fstatSync(fd);
  // Hashed here while the encoder reads and compresses on the other core (its work is dropped if
  // the segment turns out to be archived already); the bytes are kept only when stored as they are.
  const { bytes: rawBytes, sha256: rawSha256, data } = hashFd(fd, !encoder);
  if (/^[0-9A-F]{24}$/.test(name) && rawBytes !== WAL_SEGMENT_BYTES) {
    throw new WalPushError(
      ErrorType.InvalidInput,
      `${source} is ${rawBytes} bytes; pgwarden archives 16 MiB WAL segments only`,
    );
  }
  const existing = await readRecord(settings.archiveDir, name);
  if (existing) {
    if (existing.rawSha256 !== rawSha256) {
      throw new WalPushError(
        ErrorType.WalConflict,
        `WAL file ${name} is archived already with different content (sha256 ${existing.rawSha256}, this one ${rawSha256}); refusing to overwrite it`,
      );
    }
    const present = await stat(join(settings.archiveDir, existing.stored)).then(
      (s) => s.size === existing.bytes,
      () => false,
    );
    if (present) return { name, outcome: 'identical', bytes: existing.bytes, rawSha256 };
    // The record survived but its data did not (a damaged archive): store the same bytes again below.
  }
  const stored = encoder ? await encoder.result() : data!;
  const after = fstatSync(fd);
  if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || rawBytes !== before.size) {
    throw new WalPushError(
      ErrorType.InvalidInput,
      `${source} changed while it was being archived; PostgreSQL will hand it over again`,
    );
  }
  // Belt and braces: an encoder that exits 0 with no output must not become an archived segment.
  if (stored.length === 0) throw new WalPushError(ErrorType.IntegrityError, `encoding ${name} produced no output`);
  const { compression } = settings;
  const encrypted = !!settings.recipients;
  const storedName = artifactName(name, compression.algorithm, encrypted);
  await mkdirPrivate(settings.archiveDir);
  await writeFileAtomic(join(settings.archiveDir, storedName), stored);
  const record = {
    name,
    stored: storedName,
    bytes: stored.length,
    sha256: createHash('sha256').update(stored).digest('hex'),
    rawBytes,
    rawSha256,
    compression: compression.algorithm,
    encrypted,
    archivedAt: now.toISOString(),
  };
  await writeFileAtomic(join(settings.archiveDir, walRecordName(name)), JSON.stringify(record) + '\n');
  return { name, outcome: 'stored', bytes: stored.length, rawSha256 };
}

/**
 * sha256 and size of an open file, read synchronously by position (a short process gains nothing
 * from the thread pool; the encoder reading the same file keeps its own place) through one reused
 * 1 MiB buffer unless the bytes are wanted: 16 MiB of fresh memory cost ~10 ms of page faults.
 */
function hashFd(fd: number, keep: boolean): { bytes: number; sha256: string; data?: Buffer } {
  const hash = createHash('sha256');
  const parts: Buffer[] = [];
  const reused = keep ? undefined : Buffer.allocUnsafe(1 << 20);
  let bytes = 0;
  for (;;) {
    const buffer = reused ?? Buffer.allocUnsafe(1 << 20);
    const n = readSync(fd, buffer, 0, buffer.length, bytes);
    if (n === 0) break;
    hash.update(buffer.subarray(0, n));
    if (keep) parts.push(buffer.subarray(0, n));
    bytes += n;
  }
  return { bytes, sha256: hash.digest('hex'), data: keep ? Buffer.concat(parts) : undefined };
}

/** The fields of an existing record wal-push compares (the full schema is checked where records are read for restore). */
export async function readRecord(
  dir: string,
  name: string,
): Promise<{ stored: string; bytes: number; rawSha256: string } | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, walRecordName(name)), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const r = JSON.parse(text) as Record<string, unknown>;
  if (typeof r.stored !== 'string' || typeof r.bytes !== 'number' || typeof r.rawSha256 !== 'string') {
    throw new WalPushError(
      ErrorType.IntegrityError,
      `the archive record of ${name} is unreadable (${join(dir, walRecordName(name))})`,
    );
  }
  return { stored: r.stored, bytes: r.bytes, rawSha256: r.rawSha256 };
}

/** Throwaway gpg home directories of pushes: `<tmpdir>/pgwarden-walpush-<pid>-XXXXXX`. */
export const GPG_HOME_PREFIX = 'pgwarden-walpush-';

interface Encoder {
  /** The stored bytes, once the tools are done. */
  result(): Promise<Buffer>;
  cancel(): Promise<void>;
}

/**
 * `zstd` reading the segment's open file as its stdin, piped into `gpg --encrypt
 * --recipient-file <key>...` (either alone when only one is configured), started before this
 * process reads the segment for its sha256: compression runs on one core while this process
 * hashes on the other, and no 16 MiB pass through a pipe. The zstd command writes its content
 * checksum, so `zstd -d` verifies what it restores. gpg writes SEIPD with MDC and no OpenPGP compression, like the rest of pgwarden's
 * output, from a throwaway home directory (the postgres user's own GnuPG state stays out of it).
 */
function startEncoder(settings: WalPushSettings, fd: number): Encoder | undefined {
  const tools: { name: string; args: string[] }[] = [];
  const zstd = settings.compression.algorithm === 'zstd';
  if (zstd) tools.push({ name: 'zstd', args: [`-${settings.compression.level}`, '-q', '-c'] });
  let home: string | undefined;
  if (settings.recipients) {
    // Named by this process: if it dies mid-push (SIGKILL), the next pusher knows the directory is nobody's.
    home = mkdtempSync(join(tmpdir(), `${GPG_HOME_PREFIX}${process.pid}-`));
    const args = [
      '--homedir',
      home,
      '--batch',
      '--no-tty',
      '--quiet',
      '--no-autostart',
      '--trust-model',
      'always',
      '--compress-algo',
      'none',
    ];
    for (const file of settings.recipients) args.push('--recipient-file', file);
    tools.push({ name: 'gpg', args: [...args, '--output', '-', '--encrypt'] });
  }
  if (tools.length === 0) return undefined;
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const children: ChildProcess[] = [];
  const stderr: string[] = [];
  for (const [i, tool] of tools.entries()) {
    const stdin = i === 0 ? fd : children[i - 1]!.stdout!;
    const child = spawn(tool.name, tool.args, { stdio: [stdin, 'pipe', 'pipe'], env });
    // gpg holds its own copy of the pipe now: this process's copy would keep zstd's stdout open forever.
    if (i > 0) children[i - 1]!.stdout!.destroy();
    stderr.push('');
    child.stderr!.on('data', (d: Buffer) => (stderr[i] += d.toString()));
    children.push(child);
  }
  const out: Buffer[] = [];
  children.at(-1)!.stdout!.on('data', (d: Buffer) => out.push(d));
  const exits = Promise.all(
    children.map(
      (child) =>
        new Promise<number | null>((resolve, reject) => {
          child.once('error', reject);
          child.once('close', resolve);
        }),
    ),
  ).finally(() => home && rm(home, { recursive: true, force: true }));
  exits.catch(() => undefined); // awaited by result or cancel
  return {
    async result() {
      const codes = await exits;
      const failed = codes.findIndex((code) => code !== 0);
      if (failed >= 0) {
        const what = tools[failed]!.name === 'gpg' ? `gpg --encrypt to ${settings.recipients!.join(', ')}` : 'zstd';
        throw new WalPushError(
          tools[failed]!.name === 'gpg' ? ErrorType.KeyUnreadable : ErrorType.InvalidInput,
          `${what} failed (exit ${codes[failed]}): ${stderr[failed]!.trim().split('\n').slice(-3).join(' | ')}`,
        );
      }
      return Buffer.concat(out);
    },
    async cancel() {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill();
      await exits.catch(() => undefined);
    },
  };
}

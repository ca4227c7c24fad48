// The WAL archive: what `pgwarden wal-push %p %f` (archive_command) and `pgwarden wal-get %f %p`
// (restore_command) do, and the listing PITR's plan and walMaintenance read. A WAL file is small
// (16 MiB at most), so it is compressed and encrypted in memory, in this short-lived process.
//
//   wal/<name>[.zst][.gpg]   the stored bytes, written as .partial, fsynced, renamed
//   wal/<name>.json          its record, written after it: the commit marker, with the sha256 of
//                            the original bytes (an identical re-push is recognised without the
//                            private key) and of the stored bytes (wal-get checks them)
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { zstdCompressSync, zstdDecompress as zstdDecompressCb, constants as zlibConstants } from 'node:zlib';
import * as openpgp from 'openpgp';
import { z } from 'zod';
import type { Config } from '../config/index.js';
import { ErrorType, nonRetryable } from '../lib/errors.js';
import { artifactName, walArchiveDir, walRecordName } from '../lib/layout.js';
import { isWalFileName, WAL_SEGMENT_BYTES } from '../lib/wal.js';
import type { GpgKeyring } from './gpg.js';
import { loadRecipientKeys, OPENPGP_WRITE_CONFIG, writeFileAtomic } from './pipeline.js';
import { LocalRepository } from './repository.js';

// Decoding runs several files at a time (PITR staging): the digest and the decompression go to
// libuv's thread pool instead of the one JavaScript thread, so they spread over the cores.
const zstdDecompress = promisify(zstdDecompressCb);
const sha256Off = async (data: Uint8Array): Promise<string> => Buffer.from(await crypto.subtle.digest('SHA-256', data)).toString('hex');

const walRecordSchema = z.object({
  name: z.string(),
  stored: z.string(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string(),
  rawBytes: z.number().int().nonnegative(),
  rawSha256: z.string(),
  compression: z.enum(['zstd', 'none']),
  encrypted: z.boolean(),
  archivedAt: z.string(),
});
export type WalRecord = z.infer<typeof walRecordSchema>;

export class WalArchive {
  constructor(
    readonly repository: LocalRepository,
    readonly dir: string,
  ) {}

  static forCluster(config: Config, cluster: string): WalArchive {
    const repository = LocalRepository.forCluster(config, cluster);
    return new WalArchive(repository, walArchiveDir(repository.root, cluster));
  }

  async record(name: string): Promise<WalRecord | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.dir, walRecordName(name)), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return walRecordSchema.parse(JSON.parse(text));
  }

  /** Every committed WAL file's record, by name. */
  async list(): Promise<Map<string, WalRecord>> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw err;
    }
    const out = new Map<string, WalRecord>();
    for (const file of names.filter((n) => n.endsWith('.json')).sort()) {
      const record = await this.record(file.slice(0, -'.json'.length)).catch(() => undefined);
      if (record) out.set(record.name, record);
    }
    return out;
  }

  /** Removes a WAL file: its record first, so a half-done removal leaves an uncommitted file, never a record without data. */
  async remove(name: string): Promise<void> {
    const record = await this.record(name);
    await rm(join(this.dir, walRecordName(name)), { force: true });
    if (record) await rm(join(this.dir, record.stored), { force: true });
  }

  /** The stored bytes of a committed WAL file, checked against its record. */
  async readStored(name: string): Promise<{ record: WalRecord; data: Buffer } | undefined> {
    const record = await this.record(name);
    if (!record) return undefined;
    const data = await readFile(join(this.dir, record.stored));
    const sha256 = await sha256Off(data);
    if (sha256 !== record.sha256 || data.length !== record.bytes) {
      throw nonRetryable(ErrorType.IntegrityError, `archived WAL ${join(this.dir, record.stored)} is corrupt: sha256 ${sha256} (${data.length} bytes), its record says ${record.sha256} (${record.bytes} bytes)`);
    }
    return { record, data };
  }
}

export interface PushResult {
  name: string;
  /** `stored`: written now; `identical`: already archived with the same content. */
  outcome: 'stored' | 'identical';
  bytes: number;
}

/**
 * archive_command. Success only once the file is durably stored and committed. Re-pushing the same
 * content is success (PostgreSQL retries after a crash); different content under an archived name
 * is refused, since it means two clusters share an archive or a timeline went wrong.
 */
export async function pushWal(config: Config, cluster: string, source: string, name: string, now = new Date()): Promise<PushResult> {
  if (!isWalFileName(name)) throw nonRetryable(ErrorType.InvalidInput, `"${name}" is not a WAL file name`);
  const archive = WalArchive.forCluster(config, cluster);
  const raw = await readFile(source);
  if (/^[0-9A-F]{24}$/.test(name) && raw.length !== WAL_SEGMENT_BYTES) {
    throw nonRetryable(ErrorType.InvalidInput, `${source} is ${raw.length} bytes; pgwarden archives 16 MiB WAL segments only`);
  }
  const rawSha256 = createHash('sha256').update(raw).digest('hex');
  const existing = await archive.record(name);
  if (existing) {
    if (existing.rawSha256 !== rawSha256) {
      throw nonRetryable(ErrorType.WalConflict, `WAL file ${name} is archived already with different content (sha256 ${existing.rawSha256}, this one ${rawSha256}); refusing to overwrite it`);
    }
    const present = await stat(join(archive.dir, existing.stored)).then((s) => s.size === existing.bytes, () => false);
    if (present) return { name, outcome: 'identical', bytes: existing.bytes };
    // The record survived but its data did not (a damaged archive): store the same bytes again below.
  }

  const compression = config.compression.algorithm;
  let stored: Uint8Array = compression === 'zstd' ? zstdCompressSync(raw, { params: { [zlibConstants.ZSTD_c_compressionLevel]: config.compression.level } }) : raw;
  const recipients = config.encryption?.recipients;
  if (recipients) {
    const keys = await loadRecipientKeys(recipients);
    const message = await openpgp.createMessage({ binary: stored, format: 'binary' });
    stored = (await openpgp.encrypt({ message, encryptionKeys: keys.keys, format: 'binary', config: OPENPGP_WRITE_CONFIG })) as Uint8Array;
  }
  const storedName = artifactName(name, compression, !!recipients);
  await mkdir(archive.dir, { recursive: true });
  await writeFileAtomic(join(archive.dir, storedName), Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength));
  const record: WalRecord = {
    name,
    stored: storedName,
    bytes: stored.length,
    sha256: createHash('sha256').update(stored).digest('hex'),
    rawBytes: raw.length,
    rawSha256,
    compression,
    encrypted: !!recipients,
    archivedAt: now.toISOString(),
  };
  await writeFileAtomic(join(archive.dir, walRecordName(name)), JSON.stringify(record) + '\n');
  return { name, outcome: 'stored', bytes: stored.length };
}

/** How encrypted WAL is decrypted: a gpg keyring opened once per process or activity. */
export interface WalDecryption {
  keyring: GpgKeyring;
  passphrase?: string;
}

/** Opens the keyring when the config has a private key; callers remove it when done. */
export async function openWalDecryption(config: Config, env: NodeJS.ProcessEnv): Promise<WalDecryption | undefined> {
  const enc = config.encryption;
  if (!enc?.privateKeyFile) return undefined;
  const passphrase = enc.passphraseEnv ? env[enc.passphraseEnv] : undefined;
  if (enc.passphraseEnv && passphrase === undefined) throw nonRetryable(ErrorType.KeyUnreadable, `environment variable ${enc.passphraseEnv} (encryption.passphraseEnv) is not set`);
  // Loaded here, not at the top: wal-push (once per WAL file) never decrypts and starts faster without it.
  const { openKeyring } = await import('./gpg.js');
  return { keyring: await openKeyring(enc.privateKeyFile), passphrase };
}

/** The original bytes of an archived WAL file, checked (stored sha256, then original sha256). */
export async function decodeWal(archive: WalArchive, name: string, decryption: WalDecryption | undefined): Promise<Buffer | undefined> {
  const found = await archive.readStored(name);
  if (!found) return undefined;
  const { record } = found;
  let data: Buffer = found.data;
  if (record.encrypted) {
    if (!decryption) throw nonRetryable(ErrorType.KeyUnreadable, `WAL ${name} is encrypted and this host has no encryption.privateKeyFile`);
    data = await decryption.keyring.decryptBuffer(data, decryption.passphrase);
  }
  const raw = record.compression === 'zstd' ? await zstdDecompress(data) : data;
  const sha256 = await sha256Off(raw);
  if (sha256 !== record.rawSha256) throw nonRetryable(ErrorType.IntegrityError, `archived WAL ${name} decodes to sha256 ${sha256}, its record says ${record.rawSha256}`);
  return raw;
}

/** restore_command: false when the archive does not have the file (PostgreSQL then tries elsewhere or ends recovery). */
export async function getWal(config: Config, cluster: string, name: string, destination: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  if (!isWalFileName(name)) throw nonRetryable(ErrorType.InvalidInput, `"${name}" is not a WAL file name`);
  const archive = WalArchive.forCluster(config, cluster);
  if (!(await archive.record(name))) return false;
  const decryption = await openWalDecryption(config, env);
  try {
    const raw = await decodeWal(archive, name, decryption);
    if (!raw) return false;
    await writeFileAtomic(destination, raw);
    return true;
  } finally {
    await decryption?.keyring.remove();
  }
}

// The WAL archive: what `pgwarden wal-get %f %p` (restore_command) does, and the listing PITR's
// plan, walMaintenance and offsite sync read. wal-push (archive_command) writes it: src/archive/push.ts.
// A WAL file is small (16 MiB at most), so it is handled in memory.
//
//   wal/<name>[.zst][.gpg]   the stored bytes, written as .partial, fsynced, renamed
//   wal/<name>.json          its record, written after it: the commit marker, with the sha256 of
//                            the original bytes (an identical re-push is recognised without the
//                            private key) and of the stored bytes (wal-get checks them)
import { join } from 'node:path';
import { promisify } from 'node:util';
import { zstdDecompress as zstdDecompressCb } from 'node:zlib';
import { z } from 'zod';
import type { Config } from '../config/index.js';
import { ErrorType, nonRetryable } from '../lib/errors.js';
import { walArchiveDir, walRecordName } from '../lib/layout.js';
import { HISTORY_NAME, isWalFileName, parseHistory, type TimelineSwitch } from '../lib/wal.js';
import type { TimelineOrigin } from '../lib/walRetention.js';
import { decryptionKey } from '../stream/decryptionKey.js';
import type { GpgKeyring } from '../stream/gpg.js';
import { writeFileAtomic } from '../host/atomicFile.js';
import { asyncPushSettings, type WalPushSettings } from '../archive/settings.js';
import { LocalRepository } from './repository.js';

// decodeWal (wal-get, timeline histories) hands the digest and the decompression to libuv's thread
// pool instead of the one JavaScript thread; many segments at once go through decodeWalBatch.
const zstdDecompress = promisify(zstdDecompressCb);
const sha256Off = async (data: Uint8Array): Promise<string> =>
  Buffer.from(await crypto.subtle.digest('SHA-256', data)).toString('hex');

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

  /** The storage key of a file in the archive (its bytes go through the repository's posix driver). */
  private keyOf(file: string): string {
    return this.repository.keyOf(join(this.dir, file));
  }

  async record(name: string): Promise<WalRecord | undefined> {
    const text = (await this.repository.storage.readIfExists(this.keyOf(walRecordName(name))))?.toString('utf8');
    if (text === undefined) return undefined;
    return walRecordSchema.parse(JSON.parse(text));
  }

  /** Every committed WAL file's record, by name. */
  async list(): Promise<Map<string, WalRecord>> {
    const names = await this.repository.storage.names(this.keyOf(''));
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
    await this.repository.storage.remove([this.keyOf(walRecordName(name))]);
    if (record) await this.repository.storage.remove([this.keyOf(record.stored)]);
  }

  /**
   * The stored bytes of a committed WAL file, checked against its record; with `check: false` only
   * their size (for a caller that checks the decoded bytes against the record's rawSha256).
   */
  async readStored(name: string, check = true): Promise<{ record: WalRecord; data: Buffer } | undefined> {
    const record = await this.record(name);
    if (!record) return undefined;
    const data = await this.repository.storage.read(this.keyOf(record.stored));
    const sha256 = check ? await sha256Off(data) : record.sha256;
    if (sha256 !== record.sha256 || data.length !== record.bytes) {
      throw nonRetryable(
        ErrorType.IntegrityError,
        `archived WAL ${join(this.dir, record.stored)} is corrupt: sha256 ${sha256} (${data.length} bytes), its record says ${record.sha256} (${record.bytes} bytes)`,
      );
    }
    return { record, data };
  }
}

/** What wal-push needs, from a validated config. */
export function walPushSettingsFor(config: Config, cluster: string): WalPushSettings {
  const archive = WalArchive.forCluster(config, cluster);
  return {
    archiveDir: archive.dir,
    compression: config.compression,
    recipients: config.encryption?.recipients,
    async: asyncPushSettings(config.walPush, cluster),
  };
}

/** How encrypted WAL is decrypted: a gpg keyring opened once per process or activity. */
export interface WalDecryption {
  keyring: GpgKeyring;
  passphrase?: string;
}

/** Opens the keyring when the config has a private key; callers remove it when done. */
export async function openWalDecryption(config: Config, env: NodeJS.ProcessEnv): Promise<WalDecryption | undefined> {
  const key = decryptionKey(config, env);
  if (!key) return undefined;
  // Loaded here, not at the top: wal-push (once per WAL file) never decrypts and starts faster without it.
  const { openKeyring } = await import('../stream/gpg.js');
  return { keyring: await openKeyring(key.file), passphrase: key.passphrase };
}

/**
 * The original bytes of an archived WAL file, checked (stored sha256, then original sha256).
 * `checkStored: false` skips the first: the second alone proves the bytes end to end (OpenPGP's
 * integrity check and zstd's checksum catch a damaged stored file sooner), but names the stored
 * file less precisely; the prefetcher takes that, and leaves the report to the synchronous wal-get.
 */
export async function decodeWal(
  archive: WalArchive,
  name: string,
  decryption: WalDecryption | undefined,
  checkStored = true,
): Promise<Buffer | undefined> {
  const found = await archive.readStored(name, checkStored);
  if (!found) return undefined;
  const { record } = found;
  let data: Buffer = found.data;
  if (record.encrypted) {
    if (!decryption)
      throw nonRetryable(
        ErrorType.KeyUnreadable,
        `WAL ${name} is encrypted and this host has no encryption.privateKeyFile`,
      );
    data = await decryption.keyring.decryptBuffer(data, decryption.passphrase);
  }
  // One output chunk: zlib's default 16 KiB chunks cost a thread-pool round trip each (~250 ms a segment instead of ~45).
  const raw = record.compression === 'zstd' ? await zstdDecompress(data, { chunkSize: record.rawBytes + 65536 }) : data;
  const sha256 = await sha256Off(raw);
  if (sha256 !== record.rawSha256)
    throw nonRetryable(
      ErrorType.IntegrityError,
      `archived WAL ${name} decodes to sha256 ${sha256}, its record says ${record.rawSha256}`,
    );
  return raw;
}

/** The archive's timeline history files, decoded and parsed, by timeline (plan and the offsite fetch read them). */
export async function readHistories(
  config: Config,
  env: NodeJS.ProcessEnv,
  archive: WalArchive,
  names: Iterable<string>,
): Promise<Map<number, TimelineSwitch[]>> {
  const histories = new Map<number, TimelineSwitch[]>();
  const files = [...names].filter((n) => HISTORY_NAME.test(n));
  const decryption = files.length ? await openWalDecryption(config, env) : undefined;
  try {
    for (const name of files)
      histories.set(
        parseInt(HISTORY_NAME.exec(name)![1]!, 16),
        parseHistory((await decodeWal(archive, name, decryption))!.toString('utf8')),
      );
  } finally {
    await decryption?.keyring.remove();
  }
  return histories;
}

/**
 * Timelines whose history file was archived after the PITR window's anchor finished (a PITR started
 * them), for WAL and base retention (src/lib/walRetention.ts): one that branched off below the
 * anchor's start keeps the base backup and WAL its first moments replay from. Encrypted history
 * files are read where this host has the private key; without it, retention keeps more instead.
 */
export async function recentTimelines(
  config: Config,
  env: NodeJS.ProcessEnv,
  archive: WalArchive,
  records: Map<string, WalRecord>,
  anchor?: { finishedAt?: string },
): Promise<TimelineOrigin[]> {
  const since = anchor?.finishedAt ? new Date(anchor.finishedAt).getTime() : -Infinity;
  const recent = [...records.values()].filter(
    (r) => HISTORY_NAME.test(r.name) && new Date(r.archivedAt).getTime() > since,
  );
  if (recent.length === 0) return [];
  const readable = recent.filter((r) => !r.encrypted || config.encryption?.privateKeyFile);
  const histories = await readHistories(
    config,
    env,
    archive,
    readable.map((r) => r.name),
  );
  return recent.map((r) => {
    const timeline = parseInt(HISTORY_NAME.exec(r.name)![1]!, 16);
    return { timeline, history: histories.get(timeline), archivedAt: r.archivedAt };
  });
}

/** restore_command: false when the archive does not have the file (PostgreSQL then tries elsewhere or ends recovery). */
export async function getWal(
  config: Config,
  cluster: string,
  name: string,
  destination: string,
  env: NodeJS.ProcessEnv,
): Promise<boolean> {
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

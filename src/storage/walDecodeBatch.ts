// Archived WAL decoded in batches, for point-in-time recovery's staging and WAL search: the external gpg and zstd
// tools over many files at once, where wal-get (walArchive.ts) decodes one file in memory.
import { chmod, copyFile, mkdtemp, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorType, nonRetryable, retryable } from '../lib/errors.js';
import { artifactName } from '../lib/layout.js';
import { startTool, TOOL_ENV, type PriorityGroup } from '../stream/processes.js';
import type { WalArchive, WalDecryption, WalRecord } from './walArchive.js';

/**
 * Archived WAL files decoded into `outDir`, several at once: one `gpg --decrypt-files` and one
 * `zstd -d` for the batch instead of a gpg process (and a key unlock by the agent) and an
 * in-process decompression per file: about half the CPU per 16 MiB segment (51 against 92 ms
 * measured), and the work runs beside the worker's thread. Every file is checked like decodeWal
 * does: the stored bytes' sha256 before, the original bytes' sha256 after. Each file appears in
 * `outDir` by rename, complete. Returns the names the archive no longer has (nothing is written
 * for those) and the bytes written. `priority`: the tools' group, for decoding that may yield the
 * cores to what is waited for first (a recovery's base backup unpacking beside it).
 */
export async function decodeWalBatch(
  archive: WalArchive,
  names: string[],
  decryption: WalDecryption | undefined,
  outDir: string,
  signal?: AbortSignal,
  priority?: PriorityGroup,
): Promise<{ bytes: number; missing: string[] }> {
  // Loaded here: wal-get (restore_command, once per file) starts faster without openpgp.
  const { hashFile } = await import('../stream/pipeline.js');
  const scratch = await mkdtemp(join(outDir, '.batch-'));
  try {
    const found: WalRecord[] = [];
    const missing: string[] = [];
    for (const name of names) {
      const record = await archive.record(name);
      if (!record) {
        missing.push(name);
        continue;
      }
      // The record names the file as wal-push writes it, nothing else: no other name, no path.
      if (record.name !== name || record.stored !== artifactName(name, record.compression, record.encrypted)) {
        throw nonRetryable(
          ErrorType.IntegrityError,
          `the archive record of ${name} names ${record.name} stored as ${record.stored}`,
        );
      }
      const stored = join(archive.dir, record.stored);
      const { sha256, bytes } = await hashFile(stored);
      if (sha256 !== record.sha256 || bytes !== record.bytes) {
        throw nonRetryable(
          ErrorType.IntegrityError,
          `archived WAL ${stored} is corrupt: sha256 ${sha256} (${bytes} bytes), its record says ${record.sha256} (${record.bytes} bytes)`,
        );
      }
      // The tools write their output beside their input: links to the archive, in the scratch directory.
      if (record.encrypted || record.compression === 'zstd') await symlink(stored, join(scratch, record.stored));
      else await copyFile(stored, join(scratch, record.name));
      found.push(record);
    }
    const encrypted = found.filter((r) => r.encrypted);
    if (encrypted.length) {
      if (!decryption)
        throw nonRetryable(
          ErrorType.KeyUnreadable,
          `WAL ${encrypted[0]!.name} is encrypted and this host has no encryption.privateKeyFile`,
        );
      await decryption.keyring
        .decryptFiles(
          encrypted.map((r) => join(scratch, r.stored)),
          { passphrase: decryption.passphrase, signal, priority },
        )
        .catch((err: unknown) => {
          signal?.throwIfAborted();
          throw err;
        });
    }
    const compressed = found.filter((r) => r.compression === 'zstd');
    if (compressed.length) {
      // -f: the input of an unencrypted file is a link; zstd reads through it only when forced.
      const zstd = startTool(
        'zstd -d',
        'zstd',
        ['-d', '-q', '-f', '--rm', '--', ...compressed.map((r) => join(scratch, `${r.name}.zst`))],
        { env: TOOL_ENV, signal, stdout: 'ignore', priority },
      );
      await zstd.exited.catch((err: Error) => {
        signal?.throwIfAborted();
        // The bytes were checked already: a failure here is the disk or the host, worth another attempt.
        throw retryable(
          ErrorType.RecoveryFailed,
          `decompressing archived WAL from ${compressed[0]!.name} on failed: ${err.message}`,
        );
      });
    }
    let bytes = 0;
    for (const record of found) {
      const decoded = join(scratch, record.name);
      const { sha256, bytes: n } = await hashFile(decoded);
      if (sha256 !== record.rawSha256)
        throw nonRetryable(
          ErrorType.IntegrityError,
          `archived WAL ${record.name} decodes to sha256 ${sha256}, its record says ${record.rawSha256}`,
        );
      // The tools keep the archive file's mode (0600); restore_command runs as the server's owner.
      await chmod(decoded, 0o644);
      await rename(decoded, join(outDir, record.name));
      bytes += n;
    }
    return { bytes, missing };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

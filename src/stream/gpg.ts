// Decryption by stock GnuPG. pgwarden encrypts with openpgp in this process, but decrypts with
// `gpg` in a child process: it runs beside the restore instead of on the worker's JavaScript
// thread (measured: 0.7 s against 3.1 s for 300 MB, and no decrypt buffers in the worker), and
// every verified backup is thereby proven readable by the tool an operator would reach for.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { leftoverDirs } from '../host/leftoverDirs.js';
import { ErrorType, nonRetryable } from '../lib/errors.js';
import { startTool, TOOL_ENV, type PriorityGroup, type Tool, type ToolError } from './processes.js';

export interface GpgKeyring {
  home: string;
  /** Starts `gpg --decrypt` reading stdin and writing plaintext to stdout. */
  decrypt(options: { passphrase?: string; signal?: AbortSignal }): Tool;
  /** Decrypts a small message held in memory (a WAL file). */
  decryptBuffer(data: Uint8Array, passphrase?: string): Promise<Buffer>;
  /** Decrypts `<file>.gpg` files to `<file>` beside them, in one gpg process (in `priority`'s group, if given). */
  decryptFiles(
    files: string[],
    options: { passphrase?: string; signal?: AbortSignal; priority?: PriorityGroup },
  ): Promise<void>;
  /** Stops the keyring's gpg-agent and deletes the keyring. */
  remove(): Promise<void>;
}

/**
 * A throwaway keyring holding the worker's private key, still protected by its passphrase (the
 * passphrase reaches gpg through a pipe, never argv, env or disk). Short path under /tmp: the
 * agent's socket path must fit in a sockaddr.
 */
export async function openKeyring(privateKeyFile: string): Promise<GpgKeyring> {
  await removeOrphanedKeyrings();
  const home = await mkdtemp(`${KEYRING_PREFIX}${process.pid}-`);
  const remove = () => removeKeyring(home);
  // gpg-agent re-derives the key from the cached passphrase on every decrypt; with GnuPG's default
  // S2K count (~65 million iterations) that is ~300 ms per call, whatever the file's size. This
  // throwaway copy (mode 0700, deleted after use; the key file itself is unchanged) is protected
  // with a low count instead: a WAL segment then decrypts in ~10 ms.
  await writeFile(join(home, 'gpg-agent.conf'), 's2k-count 65536\n', { mode: 0o600 });
  const imported = await execa('gpg', ['--homedir', home, '--batch', '--quiet', '--import', privateKeyFile], {
    env: TOOL_ENV,
    extendEnv: false,
    reject: false,
  });
  if (imported.exitCode !== 0) {
    await remove();
    throw nonRetryable(
      ErrorType.KeyUnreadable,
      `private key ${privateKeyFile} cannot be imported by gpg: ${lastLine(imported.stderr)}`,
    );
  }
  const decrypt: GpgKeyring['decrypt'] = ({ passphrase, signal }) =>
    startTool(
      'gpg --decrypt',
      'gpg',
      // Not --quiet: it would hide "Bad passphrase" behind "No secret key".
      ['--homedir', home, '--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase-fd', '3', '--decrypt'],
      { stdin: 'pipe', env: { ...TOOL_ENV, GNUPGHOME: home }, signal, secretFd3: passphrase ?? '' },
    );
  return {
    home,
    decrypt,
    async decryptBuffer(data, passphrase) {
      const gpg = decrypt({ passphrase });
      const parts: Buffer[] = [];
      gpg.child.stdout!.on('data', (d: Buffer) => parts.push(d));
      gpg.child.stdin!.on('error', () => undefined); // gpg's exit status tells
      gpg.child.stdin!.end(data);
      await gpg.exited.catch((err: ToolError) => {
        throw nonRetryable(ErrorType.DecryptionFailed, `cannot decrypt: ${gpgFailure(err.stderr)}`);
      });
      return Buffer.concat(parts);
    },
    async decryptFiles(files, { passphrase, signal, priority }) {
      const gpg = startTool(
        'gpg --decrypt-files',
        'gpg',
        [
          '--homedir',
          home,
          '--batch',
          '--no-tty',
          '--yes',
          '--pinentry-mode',
          'loopback',
          '--passphrase-fd',
          '3',
          '--decrypt-files',
          '--',
          ...files,
        ],
        { env: { ...TOOL_ENV, GNUPGHOME: home }, signal, secretFd3: passphrase ?? '', stdout: 'ignore', priority },
      );
      await gpg.exited.catch((err: ToolError) => {
        throw nonRetryable(
          ErrorType.DecryptionFailed,
          `cannot decrypt ${files.length === 1 ? files[0] : `one of ${files.length} files from ${files[0]} on`}: ${gpgFailure(err.stderr)}`,
        );
      });
    },
    remove,
  };
}

const KEYRING_PREFIX = '/tmp/pgwarden-gpg-';

async function removeKeyring(home: string): Promise<void> {
  await execa('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'], {
    env: TOOL_ENV,
    extendEnv: false,
    reject: false,
  });
  await rm(home, { recursive: true, force: true });
}

/**
 * This user's keyrings, gpg homes and FIFO directories of worker processes that died without
 * cleaning up (SIGKILL, power loss); never another user's (a root worker's are not the PostgreSQL
 * user's wal-get's to remove). Best effort: a directory that cannot be removed fails no keyring.
 */
async function removeOrphanedKeyrings(): Promise<void> {
  for (const home of leftoverDirs('/tmp', /^pgwarden-gpg-(\d+)-/)) await removeKeyring(home).catch(() => undefined);
}

/** gpg's own words for why it could not decrypt, as one line. */
export function gpgFailure(stderr: string): string {
  if (/bad passphrase/i.test(stderr)) return 'the passphrase of the private key is wrong (gpg: bad passphrase)';
  if (/no secret key/i.test(stderr))
    return "the backup is not encrypted to this worker's private key (gpg: no secret key)";
  return `gpg: ${lastLine(stderr)}`;
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).slice(-2).join(' | ') || 'no message';
}

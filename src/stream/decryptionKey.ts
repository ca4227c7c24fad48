// The worker's private key and passphrase, from the config and the environment: one place, so that
// verify's restore, PITR's staging and every reader of the WAL archive refuse a missing one alike.
import type { Config } from '../config/index.js';
import { ErrorType, nonRetryable } from '../lib/errors.js';

export interface DecryptionKey {
  /** encryption.privateKeyFile: gpg imports it into a throwaway keyring. */
  file: string;
  /** From the variable encryption.passphraseEnv names; reaches gpg through a pipe only. */
  passphrase?: string;
}

/**
 * The key, or undefined where this host has no encryption.privateKeyFile (what needs it says so:
 * an unencrypted archive does not). A passphraseEnv that is named but not set fails here, with its
 * name, instead of later inside gpg as a bad passphrase.
 */
export function decryptionKey(
  config: Pick<Config, 'encryption'>,
  env: NodeJS.ProcessEnv,
  where = '',
): DecryptionKey | undefined {
  const enc = config.encryption;
  if (!enc?.privateKeyFile) return undefined;
  const passphrase = enc.passphraseEnv ? env[enc.passphraseEnv] : undefined;
  if (enc.passphraseEnv && passphrase === undefined)
    throw nonRetryable(
      ErrorType.KeyUnreadable,
      `environment variable ${enc.passphraseEnv} (encryption.passphraseEnv) is not set${where}`,
    );
  return { file: enc.privateKeyFile, passphrase };
}

/** The key an encrypted backup needs: KeyUnreadable when this worker has none. */
export function backupDecryptionKey(config: Pick<Config, 'encryption'>, env: NodeJS.ProcessEnv): DecryptionKey {
  // A worker's message says so (wal-get, which shares decryptionKey, runs in no worker).
  const key = decryptionKey(config, env, ' on this worker');
  if (!key)
    throw nonRetryable(
      ErrorType.KeyUnreadable,
      'the backup is encrypted and this worker has no encryption.privateKeyFile',
    );
  return key;
}

// A throwaway OpenPGP key made by stock GnuPG, to prove pgwarden's output decrypts with `gpg`.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import * as openpgp from 'openpgp';
import type { RecipientKeys } from '../../src/stream/pipeline.js';
import { requireBinary } from './require.js';

export interface TestKey {
  home: string;
  publicKeyFile: string;
  privateKeyFile: string;
  passphrase: string;
  fingerprint: string;
  /** gpg --decrypt arguments for this key (non-interactive). */
  decryptArgs(file: string): string[];
  remove(): Promise<void>;
}

export async function createTestKey(): Promise<TestKey> {
  const gpg = requireBinary('/usr/bin/gpg', 'GnuPG (gpg)');
  const home = await mkdtemp(join(tmpdir(), 'pgwarden-gpg-'));
  const passphrase = `pp-${randomBytes(12).toString('hex')}`;
  const base = ['--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', passphrase];
  await execa(gpg, [
    ...base,
    '--quick-generate-key',
    'pgwarden test <backup@pgwarden.test>',
    'ed25519',
    'sign',
    'never',
  ]);
  const { stdout } = await execa(gpg, ['--homedir', home, '--batch', '--with-colons', '--list-keys']);
  const fingerprint = stdout
    .split('\n')
    .find((l) => l.startsWith('fpr:'))!
    .split(':')[9]!;
  await execa(gpg, [...base, '--quick-add-key', fingerprint, 'cv25519', 'encr', 'never']);
  const publicKeyFile = join(home, 'backup.pub.asc');
  const privateKeyFile = join(home, 'backup.key.asc');
  await execa(gpg, ['--homedir', home, '--batch', '--armor', '--output', publicKeyFile, '--export', fingerprint]);
  await execa(gpg, [...base, '--armor', '--output', privateKeyFile, '--export-secret-keys', fingerprint]);
  return {
    home,
    publicKeyFile,
    privateKeyFile,
    passphrase,
    fingerprint,
    decryptArgs: (file) => [...base, '--quiet', '--decrypt', file],
    async remove() {
      await execa('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'], { reject: false });
      await rm(home, { recursive: true, force: true });
    },
  };
}

/**
 * Recipients for a pipeline that bypass loadRecipientKeys: a good test key, and a key that can only
 * sign (openpgp reads it, gpg refuses to encrypt to it), made in `dir`.
 */
export async function testRecipients(
  good: TestKey,
  dir: string,
): Promise<{ good: RecipientKeys; signOnly: RecipientKeys }> {
  const home = join(dir, 'signonly');
  await execa('mkdir', ['-m', '700', home]);
  const args = ['--homedir', home, '--batch'];
  await execa('gpg', [
    ...args,
    '--passphrase',
    '',
    '--quick-generate-key',
    's <s@pgwarden.test>',
    'ed25519',
    'sign',
    'never',
  ]);
  const { stdout } = await execa('gpg', [...args, '--armor', '--export', 's@pgwarden.test']);
  await execa('gpgconf', ['--homedir', home, '--kill', 'gpg-agent'], { reject: false });
  return {
    good: {
      keys: [await openpgp.readKey({ armoredKey: await readFile(good.publicKeyFile, 'utf8') })],
      fingerprints: ['good'],
    },
    signOnly: { keys: [await openpgp.readKey({ armoredKey: stdout })], fingerprints: ['sign-only'] },
  };
}

// Decryption by stock gpg in a throwaway keyring: what pgwarden encrypts now (gpg) and encrypted
// before (openpgp in the worker) comes back byte for byte,
// the failures say why in gpg's words, and keyrings of dead workers are removed.
import { createHash, randomBytes } from 'node:crypto';
import { chown, lstat, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { execa } from 'execa';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpgFailure, openKeyring } from '../../src/stream/gpg.js';
import { feedFile, loadRecipientKeys, storeArtifact } from '../../src/stream/pipeline.js';
import { shellBlocks } from '../helpers/docs.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';

let dir: string;
let key: TestKey;
let other: TestKey;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-gpg-test-'));
  [key, other] = await Promise.all([createTestKey(), createTestKey()]);
});

afterAll(async () => {
  await Promise.all([key?.remove(), other?.remove(), rm(dir, { recursive: true, force: true })]);
});

async function encrypted(data: Buffer, to: TestKey): Promise<string> {
  const path = join(dir, `${randomBytes(4).toString('hex')}.gpg`);
  await storeArtifact(Readable.from([data]), path, {
    compression: { algorithm: 'none' },
    recipients: await loadRecipientKeys([to.publicKeyFile]),
  });
  return path;
}

async function decrypt(
  path: string,
  keyFile: string,
  passphrase: string,
): Promise<{ out: Buffer; exit: PromiseSettledResult<void> }> {
  const keyring = await openKeyring(keyFile);
  try {
    const gpg = keyring.decrypt({ passphrase });
    const parts: Buffer[] = [];
    gpg.child.stdout!.on('data', (d: Buffer) => parts.push(d));
    await feedFile(path, gpg.child.stdin!).catch(() => undefined);
    const [exit] = await Promise.allSettled([gpg.exited]);
    return { out: Buffer.concat(parts), exit: exit! };
  } finally {
    await keyring.remove();
    await expect(stat(keyring.home)).rejects.toThrow();
  }
}

describe('gpg decryption', () => {
  it('returns what pgwarden encrypted, byte for byte', async () => {
    const data = randomBytes(3 << 20);
    const { out, exit } = await decrypt(await encrypted(data, key), key.privateKeyFile, key.passphrase);
    expect(exit.status).toBe('fulfilled');
    expect(out.equals(data)).toBe(true);
  });

  it('returns what earlier versions encrypted with openpgp in the worker, byte for byte', async () => {
    const data = randomBytes(1 << 20);
    const message = await openpgp.createMessage({ binary: data });
    const bytes = await openpgp.encrypt({
      message,
      encryptionKeys: (await loadRecipientKeys([key.publicKeyFile])).keys,
      format: 'binary',
      config: { aeadProtect: false, preferredCompressionAlgorithm: openpgp.enums.compression.uncompressed },
    });
    const path = join(dir, 'openpgp-made.gpg');
    await writeFile(path, bytes);
    const { out, exit } = await decrypt(path, key.privateKeyFile, key.passphrase);
    expect(exit.status).toBe('fulfilled');
    expect(out.equals(data)).toBe(true);
  });

  it('says the backup is not for this key, or that the passphrase is wrong', async () => {
    const path = await encrypted(randomBytes(1000), key);
    const wrongKey = await decrypt(path, other.privateKeyFile, other.passphrase);
    expect(wrongKey.exit.status).toBe('rejected');
    expect(gpgFailure((wrongKey.exit as PromiseRejectedResult).reason.stderr)).toMatch(
      /not encrypted to this worker's private key/,
    );
    const wrongPassphrase = await decrypt(path, key.privateKeyFile, 'not-the-passphrase');
    expect(wrongPassphrase.exit.status).toBe('rejected');
    expect(gpgFailure((wrongPassphrase.exit as PromiseRejectedResult).reason.stderr)).toMatch(/passphrase .* wrong/);
  });

  it("the README's key set-up runs unattended (no pinentry, no terminal), and its exported private key decrypts", async () => {
    // The block of step 2 of "Running it against your own cluster", as printed, into a scratch directory.
    const block = (await shellBlocks()).find((b) => b.includes('--export-secret-keys'));
    expect(block).toBeDefined();
    const out = await mkdtemp(join(dir, 'keys-'));
    const script = block!.replace(/^ {3}/gm, '').replaceAll('/etc/pgwarden/', `${out}/`);
    const passphrase = `readme-${randomBytes(6).toString('hex')}`;
    const run = await execa('bash', ['-e', '-c', `umask 022\n${script}`], {
      env: { PATH: process.env.PATH!, PASSPHRASE: passphrase },
      extendEnv: false,
      stdin: 'ignore',
      reject: false,
      timeout: 60_000,
    });
    expect(run.exitCode, run.stderr).toBe(0);
    // The private key is written 0600 whatever the administrator's umask (022 here).
    expect((await stat(join(out, 'backup.key.asc'))).mode & 0o777).toBe(0o600);
    const data = randomBytes(100_000);
    const path = await encrypted(data, { publicKeyFile: join(out, 'backup.pub.asc') } as TestKey);
    const { out: back, exit } = await decrypt(path, join(out, 'backup.key.asc'), passphrase);
    expect(exit.status).toBe('fulfilled');
    expect(back.equals(data)).toBe(true);
    // The exported key is protected by the passphrase.
    expect((await decrypt(path, join(out, 'backup.key.asc'), 'not-it')).exit.status).toBe('rejected');
  });

  it("removes this user's keyrings left by a worker that died, never another user's or a symlink", async () => {
    // This user's (root's, in CI): a PostgreSQL-user wal-get running meanwhile leaves it alone.
    const orphan = `/tmp/pgwarden-gpg-2147483646-${randomBytes(3).toString('hex')}`;
    const foreign = `${orphan}-nobody`;
    const link = `${orphan}-link`;
    await mkdir(orphan, { mode: 0o700 });
    await writeFile(join(orphan, 'leftover'), 'x');
    await mkdir(foreign, { mode: 0o700 });
    await writeFile(join(foreign, 'leftover'), 'x');
    const isRoot = process.getuid?.() === 0;
    if (isRoot) await chown(foreign, 65534, 65534);
    await symlink(dir, link);
    try {
      const keyring = await openKeyring(key.privateKeyFile);
      await keyring.remove();
      await expect(stat(orphan)).rejects.toThrow();
      if (isRoot) expect((await stat(join(foreign, 'leftover'))).isFile()).toBe(true);
      expect((await lstat(link)).isSymbolicLink()).toBe(true);
    } finally {
      await Promise.all([orphan, foreign, link].map((p) => rm(p, { recursive: true, force: true })));
    }
  });
});

describe('feedFile', () => {
  it('hashes what it feeds and honours the rate limit', async () => {
    const path = join(dir, 'plain');
    const data = randomBytes(2_500_000);
    await writeFile(path, data);
    const parts: Buffer[] = [];
    const sink = new Writable({ write: (c: Buffer, _e, cb) => (parts.push(Buffer.from(c)), cb()) });
    const started = Date.now();
    const fed = await feedFile(path, sink, { maxRate: 5_000_000 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    expect(fed.bytes).toBe(data.length);
    expect(fed.sha256).toBe(createHash('sha256').update(data).digest('hex'));
  });
});

// The stream stages on real bytes: what goes in comes out of decrypt + decompress, the hash is of
// the stored bytes, memory stays bounded, and a failure leaves only a partial file.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { zstdDecompressSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { startGpgEncrypt } from '../../src/stream/gpgEncrypt.js';
import { loadRecipientKeys, RateLimit, storeArtifact } from '../../src/stream/pipeline.js';

let dir: string;
let privateKey: openpgp.PrivateKey;
let publicKeyFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-pipeline-'));
  const { privateKey: armoredPrivate, publicKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ email: 't@pgwarden.test' }],
    format: 'armored',
  });
  privateKey = await openpgp.readPrivateKey({ armoredKey: armoredPrivate });
  publicKeyFile = join(dir, 'pub.asc');
  await writeFile(publicKeyFile, publicKey);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function chunks(data: Buffer, size = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
    })(),
  );
}

describe('storeArtifact', () => {
  it('compresses, encrypts and hashes in one pass', async () => {
    const data = Buffer.concat([randomBytes(1 << 20), Buffer.alloc(4 << 20, 'pgwarden ')]);
    const recipients = await loadRecipientKeys([publicKeyFile]);
    const path = join(dir, 'a.zst.gpg');
    const stored = await storeArtifact(chunks(data), path, {
      compression: { algorithm: 'zstd', level: 3 },
      recipients,
    });
    const bytes = await readFile(path);
    expect(stored.rawBytes).toBe(data.length);
    expect(stored.bytes).toBe(bytes.length);
    expect(stored.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(bytes.length).toBeLessThan(data.length / 2);
    const message = await openpgp.readMessage({ binaryMessage: bytes });
    const { data: plain } = await openpgp.decrypt({ message, decryptionKeys: privateKey, format: 'binary' });
    expect(Buffer.from(zstdDecompressSync(plain as Uint8Array)).equals(data)).toBe(true);
    expect((await readdir(dir)).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });

  it('leaves only the partial file when the source fails', async () => {
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(1024));
        this.destroy(new Error('pg_dump died'));
      },
    });
    const path = join(dir, 'b.zst');
    await expect(storeArtifact(failing, path, { compression: { algorithm: 'zstd' } })).rejects.toThrow('pg_dump died');
    const files = await readdir(dir);
    expect(files).not.toContain('b.zst');
  });

  it('fails, leaving only the partial file, when gpg cannot encrypt (not a short message taken for whole)', async () => {
    const path = join(dir, 'c.gpg');
    const store = storeArtifact(chunks(randomBytes(1 << 20)), path, {
      recipients: { keys: [{ armor: () => 'not a key' } as unknown as openpgp.PublicKey], fingerprints: ['X'] },
    });
    await expect(store).rejects.toThrow(/gpg --encrypt failed/);
    expect(await readdir(dir)).not.toContain('c.gpg');
  });

  it('keeps memory bounded on a large stream', async () => {
    // Big enough that buffering the stream would show far above V8's garbage, which comes and goes
    // with the machine's load (up to ~110 MB seen for this pipeline on a loaded CI machine).
    const total = 512 << 20;
    let sent = 0;
    const source = new Readable({
      read() {
        if (sent >= total) return void this.push(null);
        sent += 1 << 20;
        this.push(randomBytes(1 << 20));
      },
    });
    const recipients = await loadRecipientKeys([publicKeyFile]);
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const stored = await storeArtifact(source, join(dir, 'big.zst.gpg'), {
      compression: { algorithm: 'zstd', level: 1 },
      recipients,
    });
    clearInterval(timer);
    await rm(join(dir, 'big.zst.gpg'));
    expect(stored.rawBytes).toBe(total);
    // 512 MiB went through; the process grew by far less than that.
    expect(peak - before).toBeLessThan(192 << 20);
  });
});

describe('startGpgEncrypt', () => {
  async function failure(keys: string[], readerGone: boolean) {
    const gpg = startGpgEncrypt(keys, { stdin: 'pipe' });
    if (readerGone) gpg.tool.child.stdout!.destroy();
    else gpg.tool.child.stdout!.resume();
    gpg.tool.child.stdin!.on('error', () => undefined);
    gpg.tool.child.stdin!.end(randomBytes(4 << 20));
    return (await gpg.failure) as ApplicationFailure | undefined;
  }

  it("output whose reader went away (a store that failed): retryable, gpg's write error, not a key problem", async () => {
    const err = await failure([(await loadRecipientKeys([publicKeyFile])).keys[0]!.armor()], true);
    expect(err?.message).toMatch(/^gpg --encrypt failed .*(Broken pipe|SIGPIPE)/);
    expect(err).not.toBeInstanceOf(ApplicationFailure);
  });

  it('a key gpg cannot read: KeyUnreadable, not retried', async () => {
    const err = await failure(['not a key'], false);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'KeyUnreadable', nonRetryable: true });
    expect(err?.message).toMatch(/^gpg --encrypt failed \(exit code 2\)/);
  });
});

describe('loadRecipientKeys', () => {
  it('refuses a missing or non-key file, naming it', async () => {
    await expect(loadRecipientKeys([join(dir, 'nope.asc')])).rejects.toThrow(/nope\.asc is unreadable: ENOENT/);
    const junk = join(dir, 'junk.asc');
    await writeFile(junk, 'not a key');
    await expect(loadRecipientKeys([junk])).rejects.toThrow(/junk\.asc is not a usable OpenPGP public key/);
  });
});

describe('RateLimit', () => {
  it('holds the stream to the given rate', async () => {
    const started = Date.now();
    const limit = new RateLimit(1_000_000);
    const out: Buffer[] = [];
    for await (const c of chunks(Buffer.alloc(500_000), 50_000).pipe(limit)) out.push(c as Buffer);
    expect(Buffer.concat(out).length).toBe(500_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
  });
});

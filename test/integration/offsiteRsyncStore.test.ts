// The rsync offsite driver against a real sshd: uploads with a sha256 sidecar that listing reads
// and hides, hashing on the remote host that catches a flipped byte, downloads, removal, and clear
// errors for a changed host key, an unreachable port and a refused key.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRsyncStore } from '../../src/storage/rsync.js';
import type { Storage } from '../../src/storage/storage.js';
import type { RsyncRepositoryConfig } from '../../src/config/repositories.js';
import { ErrorType } from '../../src/lib/errors.js';
import type { ObjectKind } from '../../src/lib/offsiteKeys.js';
import { freePort } from '../helpers/ports.js';
import { sshKeygen, startSshd, type SshServer } from '../helpers/sshd.js';

const BIG = 'main/logical/app/20261122T020000Z/dump.pgdump.zst.gpg';
const MANIFEST = 'main/logical/app/20261122T020000Z/manifest.json';
const WAL = 'main/wal/000000010000000000000001.zst.gpg';
const WAL_RECORD = 'main/wal/000000010000000000000001.zst.gpg.json';
const BASE = 'main/base/20261122T030000Z/base.tar.zst.gpg';

let server: SshServer;
let dir: string;
let remoteDir: string;
let store: Storage;
const local = new Map<string, { file: string; bytes: number; sha256: string; kind: ObjectKind }>();

function repository(overrides: Partial<RsyncRepositoryConfig> = {}): RsyncRepositoryConfig {
  return {
    type: 'rsync',
    destination: `${server.user}@${server.host}:${remoteDir}`,
    port: server.port,
    identityFile: server.identityFile,
    knownHostsFile: server.knownHostsFile,
    retentionDays: 90,
    ...overrides,
  };
}

async function localFile(key: string, content: Buffer): Promise<void> {
  const file = join(dir, 'local', key);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, content);
  local.set(key, { file, bytes: content.length, sha256: sha256(content), kind: key.split('/')[1] as ObjectKind });
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const put = (key: string, progress?: (bytes: number) => void) =>
  store.put(key, local.get(key)!.file, local.get(key)!, progress);

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

beforeAll(async () => {
  server = await startSshd();
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-rsync-'));
  // Not there yet: probe creates it.
  remoteDir = join(server.remoteRoot, 'offsite copies');
  store = createRsyncStore('offsite-rsync', repository());
  await localFile(BIG, randomBytes(20 * 1024 * 1024));
  await localFile(MANIFEST, Buffer.from('{"backupId":"20261122T020000Z"}\n'));
  await localFile(WAL, randomBytes(70_000));
  await localFile(WAL_RECORD, Buffer.from('{"name":"000000010000000000000001"}\n'));
  await localFile(BASE, randomBytes(1000));
});

afterAll(async () => {
  await store?.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('rsync offsite store', () => {
  it('lists nothing before the remote path exists, and probe creates it', async () => {
    expect((await store.list('main/')).size).toBe(0);
    await store.probe();
    expect((await stat(remoteDir)).isDirectory()).toBe(true);
    expect((await store.list('main/')).size).toBe(0);
  });

  it('puts objects with a sha256 sidecar; list shows sizes and recorded sha256 and hides the sidecars', async () => {
    const seen: number[] = [];
    await put(BIG, (bytes) => seen.push(bytes));
    for (const key of [MANIFEST, WAL, WAL_RECORD, BASE]) await put(key);
    expect(seen.at(-1)).toBe(20 * 1024 * 1024);

    const listed = await store.list('main/');
    expect([...listed.keys()].sort()).toEqual([BASE, BIG, MANIFEST, WAL, WAL_RECORD]);
    for (const [key, l] of local) expect(listed.get(key)).toEqual({ key, bytes: l.bytes, recordedSha256: l.sha256 });
    expect(await readFile(join(remoteDir, `${BIG}.sha256`), 'utf8')).toBe(`${local.get(BIG)!.sha256}\n`);

    expect([...(await store.list('main/wal/')).keys()].sort()).toEqual([WAL, WAL_RECORD]);
    expect([...(await store.list('main/logical/app/2026')).keys()].sort()).toEqual([BIG, MANIFEST]);
    expect((await store.list('other/')).size).toBe(0);
  });

  it('hashes the content on the remote host; a missing key is just absent', async () => {
    const sums = await store.contentSha256([...local.keys(), 'main/wal/000000010000000000000099.zst.gpg']);
    expect(Object.fromEntries(sums)).toEqual(Object.fromEntries([...local].map(([key, l]) => [key, l.sha256])));
  });

  it('a flipped byte on the remote shows as content that differs from the recorded sha256', async () => {
    const file = await open(join(remoteDir, BIG), 'r+');
    const byte = Buffer.alloc(1);
    await file.read(byte, 0, 1, 12345);
    await file.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, 12345);
    await file.close();
    const [content, recorded] = await Promise.all([store.contentSha256([BIG]), store.list('main/logical/')]);
    expect(recorded.get(BIG)!.recordedSha256).toBe(local.get(BIG)!.sha256);
    expect(content.get(BIG)).toMatch(/^[0-9a-f]{64}$/);
    expect(content.get(BIG)).not.toBe(local.get(BIG)!.sha256);
  });

  it('a file deleted on the remote is absent from the listing', async () => {
    await rm(join(remoteDir, MANIFEST));
    const listed = await store.list('main/');
    expect(listed.has(MANIFEST)).toBe(false);
    expect(listed.has(`${MANIFEST}.sha256`)).toBe(false);
  });

  it('get round-trips an object', async () => {
    const target = join(dir, 'downloaded');
    await store.get(WAL, target);
    expect(sha256(await readFile(target))).toBe(local.get(WAL)!.sha256);
  });

  it('putting the same object again changes nothing', async () => {
    const before = await stat(join(remoteDir, WAL));
    await put(WAL);
    const after = await stat(join(remoteDir, WAL));
    expect(after.ino).toBe(before.ino); // rsync --checksum found it identical and left it alone
    expect((await store.list('main/wal/')).get(WAL)).toEqual({
      key: WAL,
      bytes: local.get(WAL)!.bytes,
      recordedSha256: local.get(WAL)!.sha256,
    });
  });

  it('remove deletes the objects and their sidecars', async () => {
    await store.remove([WAL, WAL_RECORD, 'main/wal/never-uploaded']);
    for (const name of [WAL, `${WAL}.sha256`, WAL_RECORD, `${WAL_RECORD}.sha256`]) {
      await expect(stat(join(remoteDir, name))).rejects.toThrow(/ENOENT/);
    }
    expect((await store.list('main/wal/')).size).toBe(0);
  });

  it('lists thousands of objects in one call', async () => {
    for (let i = 0; i < 3000; i++) {
      const key = `bulk/${String(i % 30).padStart(2, '0')}/object-${i}`;
      await mkdir(dirname(join(remoteDir, key)), { recursive: true });
      await writeFile(join(remoteDir, key), String(i));
      await writeFile(join(remoteDir, `${key}.sha256`), `${sha256(Buffer.from(String(i)))}\n`);
    }
    const listed = await store.list('bulk/');
    expect(listed.size).toBe(3000);
    expect(listed.get('bulk/07/object-1507')).toEqual({
      key: 'bulk/07/object-1507',
      bytes: 4,
      recordedSha256: sha256(Buffer.from('1507')),
    });
  });

  it('refuses keys that are not repository keys before they reach a remote shell', async () => {
    for (const key of ['../etc/passwd', 'main/$(reboot)', 'main/a b', 'main/.hidden', 'main/x.sha256']) {
      const err = await failureOf(store.contentSha256([key]));
      expect(err.type).toBe(ErrorType.InvalidInput);
      expect(err.nonRetryable).toBe(true);
    }
    expect((await failureOf(store.remove(['main/;rm -rf /']))).type).toBe(ErrorType.InvalidInput);
  });

  it('a host key that does not match known_hosts is a non-retryable error naming the repository', async () => {
    const bad = createRsyncStore('offsite-rsync', repository({ knownHostsFile: server.wrongKnownHostsFile }));
    // One at a time: a second promise rejecting while the first is awaited would go unhandled.
    for (const attempt of [() => bad.probe(), () => bad.put(WAL, local.get(WAL)!.file, local.get(WAL)!)]) {
      const err = await failureOf(attempt());
      expect(err.type).toBe(ErrorType.OffsiteMisconfigured);
      expect(err.nonRetryable).toBe(true);
      expect(err.message).toContain(`offsite repository "offsite-rsync" (root@127.0.0.1:${remoteDir})`);
      expect(err.message).toContain(`host key of 127.0.0.1 does not match ${server.wrongKnownHostsFile}`);
    }
  });

  it('an unreachable port is a retryable OffsiteUnavailable', async () => {
    const port = await freePort();
    const err = await failureOf(createRsyncStore('offsite-rsync', repository({ port })).probe());
    expect(err.type).toBe(ErrorType.OffsiteUnavailable);
    expect(err.nonRetryable).toBe(false);
    expect(err.message).toContain(`cannot reach 127.0.0.1:${port}`);
  });

  it('a key the server does not accept is a non-retryable error', async () => {
    const identityFile = join(dir, 'stranger_ed25519');
    await sshKeygen(identityFile);
    const err = await failureOf(createRsyncStore('offsite-rsync', repository({ identityFile })).list('main/'));
    expect(err.type).toBe(ErrorType.OffsiteMisconfigured);
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toContain('ssh refused the key');
  });
});

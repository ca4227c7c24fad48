// The posix driver of the storage interface: the local repository's files, private and atomic,
// and the registry that opens each repository type with its driver.
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/index.js';
import { createPosixStorage } from '../../src/storage/posix.js';
import { openStorage, openStore } from '../../src/storage/registry.js';

let dir: string;
let umask: number;
const mode = async (p: string) => (await lstat(p)).mode & 0o777;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

beforeAll(async () => {
  umask = process.umask(0o022);
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-posix-'));
});

afterAll(async () => {
  process.umask(umask);
  await rm(dir, { recursive: true, force: true });
});

describe('posix storage', () => {
  it('puts a file under its key atomically and privately, lists, reads, hashes and removes it', async () => {
    const storage = createPosixStorage('local', join(dir, 'repo'));
    await storage.probe();
    const source = join(dir, 'source');
    await writeFile(source, 'dump bytes');
    await storage.put('main/logical/app/20261122T020000Z/dump.pgdump', source, {
      bytes: 10,
      sha256: sha256('dump bytes'),
      kind: 'logical',
    });
    const path = storage.pathOf('main/logical/app/20261122T020000Z/dump.pgdump');
    expect(await mode(path)).toBe(0o600);
    expect(await mode(join(dir, 'repo', 'main', 'logical'))).toBe(0o700);
    expect(await readdir(join(dir, 'repo', 'main', 'logical', 'app', '20261122T020000Z'))).toEqual(['dump.pgdump']);
    await storage.write('main/logical/app/20261122T020000Z/manifest.json', '{}\n');
    await writeFile(storage.pathOf('main/logical/app/20261122T020000Z/x.partial'), 'left by a crash');

    const listed = await storage.list('main/logical/');
    expect([...listed.keys()].sort()).toEqual([
      'main/logical/app/20261122T020000Z/dump.pgdump',
      'main/logical/app/20261122T020000Z/manifest.json',
    ]);
    expect(listed.get('main/logical/app/20261122T020000Z/dump.pgdump')).toEqual({
      key: 'main/logical/app/20261122T020000Z/dump.pgdump',
      bytes: 10,
      recordedSha256: undefined,
    });
    expect((await storage.read('main/logical/app/20261122T020000Z/manifest.json')).toString()).toBe('{}\n');
    expect(await storage.readIfExists('main/nothing.json')).toBeUndefined();
    await expect(storage.read('main/nothing.json')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await storage.names('main/logical/app')).toEqual(['20261122T020000Z']);
    expect(await storage.names('main/base')).toEqual([]);
    expect(await storage.contentSha256(['main/logical/app/20261122T020000Z/dump.pgdump', 'main/gone'])).toEqual(
      new Map([['main/logical/app/20261122T020000Z/dump.pgdump', sha256('dump bytes')]]),
    );

    await storage.remove(['main/logical/app/20261122T020000Z/manifest.json', 'main/gone']);
    expect(await storage.readIfExists('main/logical/app/20261122T020000Z/manifest.json')).toBeUndefined();
    await storage.removeTree('main/logical/app');
    expect(await storage.names('main/logical')).toEqual([]);
  });

  it('gets an object into a local file as private as the repository writes it (0600)', async () => {
    const storage = createPosixStorage('local', join(dir, 'repo-get'));
    await storage.makeDir('main/wal');
    // An object left 0644 by someone else (an operator's copy): the download is 0600 all the same.
    await writeFile(storage.pathOf('main/wal/000000010000000000000001'), 'wal bytes', { mode: 0o644 });
    const local = join(dir, 'fetched');
    await storage.get('main/wal/000000010000000000000001', local);
    expect(await readFile(local, 'utf8')).toBe('wal bytes');
    expect(await mode(local)).toBe(0o600);
  });

  it('refuses a repository it cannot write, naming it', async () => {
    if (process.getuid?.() === 0) return; // root writes anywhere
    await expect(createPosixStorage('local', '/proc/pgwarden').probe()).rejects.toThrow(
      'repository "local" at /proc/pgwarden is not writable',
    );
  });
});

describe('registry', () => {
  const config = {
    repositories: {
      local: { type: 'local', path: '/var/backups/pgwarden' },
      dr: { type: 'rsync', destination: 'backup@dr.example:/srv/pgwarden', port: 22 },
    },
  } as unknown as Config;

  it('opens each repository type with its driver, which declares what it supports', () => {
    expect(openStorage(config, 'local', {})).toMatchObject({
      type: 'local',
      features: { localPath: true, recordsSha256: false },
    });
    expect(openStorage(config, 'dr', {})).toMatchObject({
      type: 'rsync',
      features: { batch: true, recordsSha256: true },
    });
  });

  it('declares batch and archive classes exactly when it has putBatch and prepareRead (what callers ask)', () => {
    for (const name of ['local', 'dr']) {
      const store = openStorage(config, name, {});
      expect(store.features.batch).toBe(typeof store.putBatch === 'function');
      expect(store.features.archiveClasses).toBe(typeof store.prepareRead === 'function');
    }
  });

  it('opens only s3 and rsync repositories as offsite stores', () => {
    expect(() => openStore(config, 'local', {})).toThrow(
      '"local" is not an offsite (s3 or rsync) repository in the config',
    );
    expect(() => openStorage(config, 'nope', {})).toThrow('"nope" is not a repository in the config');
  });
});

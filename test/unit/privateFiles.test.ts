// What pgwarden writes is private whatever the umask, and as root it belongs to the directory's owner.
import { chmod, chown, lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirPrivate, writeFileAtomic } from '../../src/host/atomicFile.js';

let dir: string;
let umask: number;
const mode = async (p: string) => (await lstat(p)).mode & 0o777;

beforeAll(async () => {
  umask = process.umask(0o022);
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-private-'));
});

afterAll(async () => {
  process.umask(umask);
  await rm(dir, { recursive: true, force: true });
});

describe('private files', () => {
  it('writeFileAtomic writes 0600 under umask 022, a leftover .partial of another mode too', async () => {
    await writeFileAtomic(join(dir, 'a.json'), '{}');
    expect(await mode(join(dir, 'a.json'))).toBe(0o600);
    await writeFile(join(dir, 'b.json.partial'), 'left by a crash', { mode: 0o644 });
    await writeFileAtomic(join(dir, 'b.json'), '{}');
    expect(await mode(join(dir, 'b.json'))).toBe(0o600);
    expect(await readFile(join(dir, 'b.json'), 'utf8')).toBe('{}');
  });

  it('refuses a .partial that is a symbolic link, leaving its target alone', async () => {
    await writeFile(join(dir, 'target'), 'precious', { mode: 0o644 });
    await symlink(join(dir, 'target'), join(dir, 'c.json.partial'));
    await expect(writeFileAtomic(join(dir, 'c.json'), '{}')).rejects.toMatchObject({ code: 'ELOOP' });
    expect(await readFile(join(dir, 'target'), 'utf8')).toBe('precious');
    expect(await mode(join(dir, 'target'))).toBe(0o644);
  });

  it('mkdirPrivate makes every directory it creates 0700 and leaves existing ones alone', async () => {
    await mkdir(join(dir, 'old'), { mode: 0o755 });
    await mkdirPrivate(join(dir, 'old/x/y/z'));
    expect(await mode(join(dir, 'old'))).toBe(0o755);
    for (const d of ['old/x', 'old/x/y', 'old/x/y/z']) expect(await mode(join(dir, d))).toBe(0o700);
    await mkdirPrivate(join(dir, 'old/x/y/z')); // exists: nothing to do
  });

  it.runIf(process.getuid?.() === 0)(
    'as root, files and directories take the owner of the directory they are created in',
    async () => {
      const repo = join(dir, 'repo');
      await mkdir(repo);
      await chmod(repo, 0o700);
      await chown(repo, 65534, 65534);
      await mkdirPrivate(join(repo, 'main/logical'));
      await writeFileAtomic(join(repo, 'main/logical/manifest.json'), '{}');
      for (const p of ['main', 'main/logical', 'main/logical/manifest.json'])
        expect((await stat(join(repo, p))).uid).toBe(65534);
    },
  );
});

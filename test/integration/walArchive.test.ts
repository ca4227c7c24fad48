// `pgwarden wal-push` / `wal-get` as PostgreSQL runs them (the real CLI, separate processes): the
// same segment twice is success, a different file under an archived name is refused, what a crash
// can leave behind is never served, a root worker's leftover in /tmp does not stop the PostgreSQL
// user's wal-get, and a corrupt archived file stops recovery instead of ending it.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGWARDEN } from '../helpers/archiving.js';
import { PASSPHRASE_ENV, testConfig } from '../helpers/config.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { keyForPostgres, postgresIds } from '../helpers/walSpool.js';

let dir: string;
let key: TestKey;
let configFile: string;
let walDir: string;
const SEGMENT = '000000010000000000000003';

beforeAll(async () => {
  [dir, key] = await Promise.all([mkdtemp(join(tmpdir(), 'pgwarden-walcli-')), createTestKey()]);
  configFile = join(dir, 'pgwarden.config.json');
  walDir = join(dir, 'repo/main/wal');
  const config = testConfig({
    cluster: { host: '127.0.0.1', port: 5432, user: 'postgres', dataDir: '/nonexistent' },
    repository: join(dir, 'repo'),
    taskQueue: 'unused',
    key,
  });
  await writeFile(configFile, JSON.stringify(config));
});

afterAll(async () => {
  await Promise.all([key?.remove(), rm(dir, { recursive: true, force: true })]);
});

const cli = (...args: string[]) =>
  execa(PGWARDEN, ['--config', configFile, ...args], {
    reject: false,
    env: { [PASSPHRASE_ENV]: key.passphrase, PGWARDEN_FROM_SOURCE: '1' },
    cwd: dir,
  });

async function segmentFile(name: string, bytes = 16 * 1024 * 1024): Promise<{ path: string; data: Buffer }> {
  const data = Buffer.concat([randomBytes(1 << 20), Buffer.alloc(bytes - (1 << 20))]); // mostly zeros, like a fresh segment
  const path = join(dir, name);
  await writeFile(path, data);
  return { path, data };
}

describe('wal-push and wal-get', () => {
  it('archives a segment compressed and encrypted; the same segment again is success', async () => {
    const { path, data } = await segmentFile(`pg_wal_${SEGMENT}`);
    const first = await cli('wal-push', '--cluster', 'main', path, SEGMENT);
    expect(first.exitCode, first.stderr).toBe(0);
    expect((await readdir(walDir)).sort()).toEqual([`${SEGMENT}.json`, `${SEGMENT}.zst.gpg`]);
    const again = await cli('wal-push', '--cluster', 'main', path, SEGMENT);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/archived already with the same content/);

    const out = join(dir, 'RECOVERYXLOG');
    const got = await cli('wal-get', '--cluster', 'main', SEGMENT, out);
    expect(got.exitCode, got.stderr).toBe(0);
    expect((await readFile(out)).equals(data)).toBe(true);
    // Stock gpg reads the archived file too (an operator's way without pgwarden).
    const gpg = await execa('gpg', key.decryptArgs(join(walDir, `${SEGMENT}.zst.gpg`)), { encoding: 'buffer' });
    expect(gpg.stdout.length).toBeGreaterThan(0);
  });

  it('refuses a different file under an archived name, and leaves the archive as it was', async () => {
    const before = await readFile(join(walDir, `${SEGMENT}.zst.gpg`));
    const { path } = await segmentFile('other');
    const r = await cli('wal-push', '--cluster', 'main', path, SEGMENT);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/archived already with different content .* refusing to overwrite/);
    expect((await readFile(join(walDir, `${SEGMENT}.zst.gpg`))).equals(before)).toBe(true);
  });

  it('archives history files, and says "not found" (exit 1) for what the archive lacks', async () => {
    const history = join(dir, '00000002.history');
    await writeFile(history, '1\t0/3000060\tno recovery target specified\n');
    expect((await cli('wal-push', '--cluster', 'main', history, '00000002.history')).exitCode).toBe(0);
    const got = await cli('wal-get', '--cluster', 'main', '00000002.history', join(dir, 'h'));
    expect(got.exitCode).toBe(0);
    expect(await readFile(join(dir, 'h'), 'utf8')).toMatch(/no recovery target/);
    expect((await cli('wal-get', '--cluster', 'main', '00000003.history', join(dir, 'x'))).exitCode).toBe(1);
    expect((await cli('wal-push', '--cluster', 'main', history, '../../etc/passwd')).exitCode).not.toBe(0);
  });

  it('never serves what a crash mid-write leaves: a .partial file, or data without its record', async () => {
    const name = '000000010000000000000004';
    const { path, data } = await segmentFile(name);
    expect((await cli('wal-push', '--cluster', 'main', path, name)).exitCode).toBe(0);
    // A crash before the rename leaves only the .partial; after it, the data without its record.
    await rename(join(walDir, `${name}.zst.gpg`), join(walDir, `${name}.zst.gpg.partial`));
    await rm(join(walDir, `${name}.json`));
    expect((await cli('wal-get', '--cluster', 'main', name, join(dir, 'p'))).exitCode).toBe(1);
    await rename(join(walDir, `${name}.zst.gpg.partial`), join(walDir, `${name}.zst.gpg`));
    expect((await cli('wal-get', '--cluster', 'main', name, join(dir, 'p'))).exitCode).toBe(1);
    // PostgreSQL retries the push: it completes, and the segment is served.
    expect((await cli('wal-push', '--cluster', 'main', path, name)).exitCode).toBe(0);
    expect((await cli('wal-get', '--cluster', 'main', name, join(dir, 'p'))).exitCode).toBe(0);
    expect((await readFile(join(dir, 'p'))).equals(data)).toBe(true);
  });

  it("as the PostgreSQL user, is not stopped by a root worker's leftover in /tmp, and removes its own user's", async () => {
    const postgres = await postgresIds();
    if (!postgres) return; // not root: no other user to be
    // A worker (root) killed mid-dump leaves its FIFO directory or gpg home, mode 0700; so does a
    // PostgreSQL-user fetcher its keyring. Their pid: a process that has exited.
    const child = execa('true');
    await child;
    const dead = child.pid!;
    const rootLeft = `/tmp/pgwarden-gpg-${dead}-r${randomBytes(3).toString('hex')}`;
    const ownLeft = `/tmp/pgwarden-gpg-${dead}-p${randomBytes(3).toString('hex')}`;
    // And one of its own it cannot remove (root's directory inside): best effort, no failure.
    const ownStuck = `/tmp/pgwarden-gpg-${dead}-s${randomBytes(3).toString('hex')}`;
    for (const d of [rootLeft, ownLeft, ownStuck, join(ownStuck, 'root')]) {
      await mkdir(d, { mode: 0o700 });
      await writeFile(join(d, 'toc'), 'x');
    }
    await execa('chown', ['-R', `${postgres.uid}:${postgres.gid}`, ownLeft, dir]);
    await chown(ownStuck, postgres.uid, postgres.gid);
    const privateKeyFile = await keyForPostgres(key.privateKeyFile, 'walcli');
    const asPostgres = join(dir, 'postgres.config.json');
    const config = JSON.parse(await readFile(configFile, 'utf8')) as { encryption: { privateKeyFile: string } };
    config.encryption.privateKeyFile = privateKeyFile;
    await writeFile(asPostgres, JSON.stringify(config));
    try {
      const argv = [PGWARDEN, '--config', asPostgres, 'wal-get', '--cluster', 'main', SEGMENT, join(dir, 'pg')];
      const got = await execa('runuser', ['-u', 'postgres', '--', ...argv], {
        reject: false,
        env: { [PASSPHRASE_ENV]: key.passphrase, PGWARDEN_FROM_SOURCE: '1' },
        cwd: dir,
      });
      expect(got.exitCode, got.stderr).toBe(0);
      expect((await readFile(join(dir, 'pg'))).length).toBe(16 * 1024 * 1024);
      expect(await readFile(join(rootLeft, 'toc'), 'utf8')).toBe('x');
      expect(existsSync(ownLeft)).toBe(false);
      expect(existsSync(join(ownStuck, 'root', 'toc'))).toBe(true);
    } finally {
      await Promise.all(
        [rootLeft, ownLeft, ownStuck, privateKeyFile].map((p) => rm(p, { recursive: true, force: true })),
      );
    }
  });

  it('stops recovery (exit above 125) when an archived file is corrupt, naming it', async () => {
    const stored = join(walDir, `${SEGMENT}.zst.gpg`);
    const bytes = await readFile(stored);
    bytes[bytes.length >> 1]! ^= 0xff;
    await writeFile(stored, bytes);
    const r = await cli('wal-get', '--cluster', 'main', SEGMENT, join(dir, 'c'));
    expect(r.exitCode).toBeGreaterThan(125);
    expect(r.stderr).toMatch(new RegExp(`${SEGMENT}.zst.gpg is corrupt: sha256`));
  });
});

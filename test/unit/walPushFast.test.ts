import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushWalFile } from '../../src/archive/push.js';
import { parseWalPushArgs, walPushSettings } from '../../src/archive/fastPath.js';
import { parseConfig } from '../../src/config/index.js';
import { readyFiles } from '../../src/archive/pushAsync.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';

describe('wal-push fast path: arguments', () => {
  it('takes the archive_command forms and declines anything else', () => {
    const call = {
      config: '/etc/p.json',
      cluster: 'main',
      path: 'pg_wal/000000010000000000000003',
      name: '000000010000000000000003',
    };
    expect(
      parseWalPushArgs(['--config', '/etc/p.json', 'wal-push', '--cluster', 'main', call.path, call.name]),
    ).toEqual(call);
    expect(parseWalPushArgs(['-c', '/etc/p.json', 'wal-push', call.path, '--cluster=main', call.name])).toEqual(call);
    expect(parseWalPushArgs(['wal-push', '--cluster', 'main', call.path, call.name])).toEqual({
      ...call,
      config: undefined,
    });
    expect(parseWalPushArgs(['wal-get', '--cluster', 'main', call.name, call.path])).toBeUndefined();
    expect(parseWalPushArgs(['wal-push', '--cluster', 'main', call.path])).toBeUndefined();
    expect(parseWalPushArgs(['wal-push', '--help'])).toBeUndefined();
    expect(parseWalPushArgs(['--verbose', 'wal-push', '--cluster', 'main', call.path, call.name])).toBeUndefined();
  });
});

describe('wal-push fast path: config', () => {
  const base = { clusters: { main: {} }, repositories: { local: { type: 'local', path: '/srv/pgwarden' } } };

  it('reads what wal-push needs, with the schema defaults', () => {
    expect(walPushSettings(base, 'main')).toEqual({
      archiveDir: '/srv/pgwarden/main/wal',
      compression: { algorithm: 'zstd', level: 1 },
      recipients: undefined,
    });
    const full = {
      ...base,
      compression: { algorithm: 'none', level: 3 },
      encryption: { recipients: ['/etc/k.asc'] },
      clusters: { main: { repository: 'local' } },
    };
    expect(walPushSettings(full, 'main')).toEqual({
      archiveDir: '/srv/pgwarden/main/wal',
      compression: { algorithm: 'none', level: 3 },
      recipients: ['/etc/k.asc'],
    });
  });

  it('takes a config as zod writes it out, every section present, and the asynchronous mode with its defaults', () => {
    const parsed = parseConfig({
      clusters: { main: { host: 'db', user: 'postgres' } },
      repositories: { local: { type: 'local', path: '/srv/pgwarden' } },
    });
    expect(walPushSettings(JSON.parse(JSON.stringify(parsed)), 'main')).toMatchObject({
      archiveDir: '/srv/pgwarden/main/wal',
      async: undefined,
    });
    expect(walPushSettings({ ...base, walPush: { async: true } }, 'main')?.async).toEqual({
      spoolDirectory: join(tmpdir(), `pgwarden-spool-${process.getuid!()}`, 'main'),
      processes: 2,
      waitSeconds: 60,
    });
    expect(
      walPushSettings(
        { ...base, walPush: { async: true, spoolDirectory: '/var/spool/pgwarden', processes: 4, waitSeconds: 5 } },
        'main',
      )?.async,
    ).toEqual({ spoolDirectory: '/var/spool/pgwarden/main', processes: 4, waitSeconds: 5 });
    for (const walPush of [
      { async: 'yes' },
      { async: true, processes: 0 },
      { async: true, waitSeconds: 86400 },
      { async: true, spoolDirectory: '' },
      { asnyc: true },
    ]) {
      expect(walPushSettings({ ...base, walPush }, 'main')).toBeUndefined();
    }
  });

  it('takes a cluster with standbys, backupFrom and replication thresholds (wal-push does not read them)', () => {
    const replicated = {
      ...base,
      clusters: {
        main: {
          standbys: [{ name: 'replica1', host: 'db2', port: 5432, passwordEnv: 'REPLICA_PW' }],
          backupFrom: 'prefer-standby',
          replication: { lagLimitBytes: 1048576, alertLagBytes: 16777216, alertLagSeconds: 300 },
        },
      },
    };
    expect(parseConfig(replicated).clusters.main!.standbys).toHaveLength(1);
    expect(walPushSettings(replicated, 'main')).toMatchObject({ archiveDir: '/srv/pgwarden/main/wal' });
  });

  it('declines what it does not read plainly, for the full program to validate', () => {
    expect(walPushSettings(base, 'other')).toBeUndefined();
    expect(walPushSettings({ ...base, repositories: { local: { type: 's3', path: '/x' } } }, 'main')).toBeUndefined();
    expect(walPushSettings({ ...base, compression: { level: '3' } }, 'main')).toBeUndefined();
    expect(walPushSettings({ ...base, compression: { algorithm: 'gzip' } }, 'main')).toBeUndefined();
    expect(walPushSettings({ ...base, encryption: { recipients: [] } }, 'main')).toBeUndefined();
    expect(walPushSettings(null, 'main')).toBeUndefined();
    // Keys the schema refuses: a misspelt `encryption` must not mean unencrypted WAL.
    expect(walPushSettings({ ...base, encrpytion: { recipients: ['/etc/k.asc'] } }, 'main')).toBeUndefined();
    expect(walPushSettings({ ...base, clusters: { main: { repositry: 'other' } } }, 'main')).toBeUndefined();
    expect(walPushSettings({ ...base, encryption: { recipient: ['/etc/k.asc'] } }, 'main')).toBeUndefined();
    expect(walPushSettings(base, '__proto__')).toBeUndefined();
    expect(walPushSettings({ ...base, clusters: { main: { standbyz: [] } } }, 'main')).toBeUndefined();
    expect(walPushSettings(base, '../escape')).toBeUndefined();
  });
});

describe('pushWalFile', () => {
  let key: TestKey;
  let dir: string;
  beforeAll(async () => {
    [key, dir] = await Promise.all([createTestKey(), mkdtemp(join(tmpdir(), 'pgwarden-walpush-test-'))]);
  });
  afterAll(async () => {
    await Promise.all([key?.remove(), rm(dir, { recursive: true, force: true })]);
  });

  it('stores zstd + OpenPGP that stock gpg and zstd read back, and a record; the same file again is identical, another is refused', async () => {
    const name = '000000010000000000000007';
    const segment = Buffer.alloc(16 * 1024 * 1024, 0);
    segment.write('pgwarden wal-push test segment', 4096);
    const source = join(dir, name);
    await writeFile(source, segment);
    const settings = {
      archiveDir: join(dir, 'wal'),
      compression: { algorithm: 'zstd' as const, level: 1 },
      recipients: [key.publicKeyFile],
    };
    expect(await pushWalFile(settings, source, name)).toMatchObject({ outcome: 'stored' });
    const record = JSON.parse(await readFile(join(dir, 'wal', `${name}.json`), 'utf8'));
    expect(record).toMatchObject({
      name,
      stored: `${name}.zst.gpg`,
      rawBytes: segment.length,
      compression: 'zstd',
      encrypted: true,
    });
    const decoded = await execa(
      'sh',
      [
        '-c',
        `gpg --batch --quiet --homedir "${key.home}" --pinentry-mode loopback --passphrase-fd 3 --decrypt "${join(dir, 'wal', record.stored)}" 3<&0 <&- | zstd -d | sha256sum`,
      ],
      {
        input: key.passphrase,
      },
    );
    expect(decoded.stdout.split(' ')[0]).toBe(record.rawSha256);

    expect(await pushWalFile(settings, source, name)).toMatchObject({ outcome: 'identical' });
    segment.write('different', 8192);
    await writeFile(source, segment);
    await expect(pushWalFile(settings, source, name)).rejects.toMatchObject({ type: 'WalConflict' });
  });

  it('leaves a config it does not read plainly to the full program, which names the bad field', async () => {
    const configFile = join(dir, 'bad.config.json');
    await writeFile(
      configFile,
      JSON.stringify({
        clusters: { main: {} },
        repositories: { local: { type: 'local', path: dir } },
        compression: { level: 'high' },
      }),
    );
    const r = await execa(
      join(import.meta.dirname, '../../bin/pgwarden'),
      ['--config', configFile, 'wal-push', '--cluster', 'main', join(dir, 'x'), '000000010000000000000009'],
      {
        reject: false,
        env: { PGWARDEN_FROM_SOURCE: '1' },
      },
    );
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/invalid config .*compression\.level/);
  });
});

describe('readyFiles', () => {
  it('lists what PostgreSQL marked ready, in its archiving order: timeline history first, then oldest first', async () => {
    const pgWal = await mkdtemp(join(tmpdir(), 'pgwarden-ready-'));
    try {
      await mkdir(join(pgWal, 'archive_status'));
      for (const f of [
        '000000020000000000000004.ready',
        '000000010000000000000003.ready',
        '00000002.history.ready',
        '000000010000000000000002.done',
        'junk.ready',
        '000000010000000000000003.00000028.backup.ready',
      ]) {
        await writeFile(join(pgWal, 'archive_status', f), '');
      }
      expect(readyFiles(pgWal)).toEqual([
        '00000002.history',
        '000000010000000000000003',
        '000000010000000000000003.00000028.backup',
        '000000020000000000000004',
      ]);
      expect(readyFiles(join(pgWal, 'missing'))).toEqual([]);
    } finally {
      await rm(pgWal, { recursive: true, force: true });
    }
  });
});

import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseWalArgs } from '../../src/archive/fastPath.js';
import { fastWalGet, fetcherJob } from '../../src/archive/getFast.js';
import {
  FETCHER_LOCK,
  clearSpool,
  fetcherKey,
  fileIdentity,
  getFromSpool,
  spool,
  type FetcherJob,
} from '../../src/archive/getSpool.js';
import { claimLock } from '../../src/archive/pusherProcess.js';
import { parseConfig } from '../../src/config/index.js';

describe('wal-get fast path', () => {
  const base = { clusters: { main: {} }, repositories: { local: { type: 'local', path: '/srv/pgwarden' } } };

  it('takes the restore_command forms and declines anything else', () => {
    const name = '000000010000000000000003';
    expect(
      parseWalArgs(['-c', '/etc/p.json', 'wal-get', '--cluster', 'main', name, 'pg_wal/RECOVERYXLOG'], 'wal-get'),
    ).toEqual({
      config: '/etc/p.json',
      cluster: 'main',
      positional: [name, 'pg_wal/RECOVERYXLOG'],
    });
    expect(parseWalArgs(['wal-push', '--cluster', 'main', 'pg_wal/x', name], 'wal-get')).toBeUndefined();
    expect(parseWalArgs(['wal-get', '--cluster', 'main', name], 'wal-get')).toBeUndefined();
    expect(parseWalArgs(['--config', '/c', 'wal-get-fetcher', '{}'], 'wal-get')).toBeUndefined();
  });

  it('is off unless the config turns it on: a config as zod writes it out has no fetcher', () => {
    const parsed = JSON.parse(JSON.stringify(parseConfig(base))) as Record<string, unknown>;
    expect(parsed.walGet).toEqual({ async: false, prefetch: 8 });
    expect(fetcherJob(parsed, 'main', '/etc/p.json')).toBeUndefined();
    expect(fetcherJob(base, 'main', '/etc/p.json')).toBeUndefined();
  });

  it('on, with the schema defaults or the config values', () => {
    expect(fetcherJob({ ...base, walGet: { async: true } }, 'main', '/etc/p.json')).toEqual({
      config: '/etc/p.json',
      cluster: 'main',
      archiveDir: '/srv/pgwarden/main/wal',
      spoolDirectory: join(tmpdir(), `pgwarden-get-spool-${process.getuid!()}`, 'main'),
      prefetch: 8,
    });
    const walGet = { async: true, prefetch: 3, spoolDirectory: '/var/spool/pgwarden-get' };
    expect(fetcherJob({ ...base, walGet }, 'main', '/c')).toMatchObject({
      spoolDirectory: '/var/spool/pgwarden-get/main',
      prefetch: 3,
    });
    expect(parseConfig({ ...base, walGet }).walGet).toEqual(walGet);
  });

  it('leaves a section it does not read plainly to the full program', () => {
    for (const walGet of [
      { async: 'yes' },
      { async: true, prefetch: 0 },
      { async: true, prefetch: 65 },
      { async: true, prefetch: 2.5 },
      { async: true, spoolDirectory: '' },
      { async: true, prefech: 4 },
      [],
    ])
      expect(fetcherJob({ ...base, walGet }, 'main', '/c')).toBeUndefined();
    expect(() => parseConfig({ ...base, walGet: { async: true, prefech: 4 } })).toThrow(/prefech/);
  });
});

describe('wal-get fast path: the archive and the spool', () => {
  const name = '000000010000000000000007';
  let dir: string;
  let job: FetcherJob;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pgwarden-getfast-'));
    job = {
      spoolDirectory: join(dir, 'spool', 'main'),
      prefetch: 4,
      config: join(dir, 'p.json'),
      cluster: 'main',
      archiveDir: join(dir, 'repo', 'main', 'wal'),
    };
    mkdirSync(job.archiveDir, { recursive: true });
    mkdirSync(job.spoolDirectory, { recursive: true, mode: 0o700 });
    chmodSync(dirname(job.spoolDirectory), 0o700);
    writeFileSync(
      job.config,
      JSON.stringify({
        clusters: { main: {} },
        repositories: { local: { type: 'local', path: join(dir, 'repo') } },
        walGet: { async: true, prefetch: 4, spoolDirectory: join(dir, 'spool') },
      }),
    );
    // This process stands for a running fetcher: no other is started.
    expect(claimLock(join(job.spoolDirectory, FETCHER_LOCK), fetcherKey(job))).toBe(true);
  });
  afterEach(() => {
    process.exitCode = undefined;
    rmSync(dir, { recursive: true, force: true });
  });
  const call = (file: string) => ['--config', job.config, 'wal-get', '--cluster', 'main', file, join(dir, 'out')];

  it('answers "not in the archive" itself, and leaves a missing archive directory to the full program', async () => {
    expect(await fastWalGet(call(name))).toBe(true);
    expect(process.exitCode).toBe(1);
    expect(await fastWalGet(call('00000002.history'))).toBe(true);
    process.exitCode = undefined;
    rmSync(job.archiveDir, { recursive: true });
    expect(await fastWalGet(call(name))).toBe(false);
    expect(process.exitCode).toBeUndefined();
  });

  const data = Buffer.alloc(1 << 16, 7);
  const sha256 = createHash('sha256').update(data).digest('hex');
  const served = () => existsSync(join(dir, 'out')) && readFileSync(join(dir, 'out')).equals(data);

  it('serves the file the fetcher left by rename, without hashing it again', async () => {
    writeFileSync(join(job.archiveDir, `${name}.json`), '{}');
    await spool(job, name, data, sha256);
    // The sidecar's sha256 is not read again for the very file the fetcher checked and left.
    const side = join(job.spoolDirectory, `${name}.sha256`);
    writeFileSync(side, readFileSync(side, 'utf8').replace(sha256, 'f'.repeat(64)));
    expect(await getFromSpool(job, name, join(dir, 'out'))).toBe(true);
    expect(served()).toBe(true);
    expect(existsSync(join(job.spoolDirectory, name))).toBe(false);
    expect(readFileSync(join(job.spoolDirectory, 'wanted'), 'utf8')).toBe('000000010000000000000008');
  });

  it('hashes a spooled file written to after the fetcher left it, and refuses it when it differs', async () => {
    writeFileSync(join(job.archiveDir, `${name}.json`), '{}');
    await spool(job, name, data, sha256);
    const flipped = Buffer.from(data);
    flipped[100] = flipped[100]! ^ 1;
    await new Promise((r) => setTimeout(r, 10)); // kernels before 6.13 stamp ctime to a clock tick
    writeFileSync(join(job.spoolDirectory, name), flipped); // same inode, same size
    expect(await getFromSpool(job, name, join(dir, 'out'))).toBe(false);
    expect(existsSync(join(dir, 'out'))).toBe(false);
    expect(existsSync(join(job.spoolDirectory, name))).toBe(false);
    // Written again with the right bytes (another identity): hashed, and served.
    await spool(job, name, data, sha256);
    writeFileSync(join(job.spoolDirectory, name), data);
    expect(await getFromSpool(job, name, join(dir, 'out'))).toBe(true);
    expect(served()).toBe(true);
  });

  it("clears what recovery went past, and a fetcher's temporary files only as it starts or leaves", () => {
    const at = (f: string) => join(job.spoolDirectory, f);
    for (const f of [
      `${name}.tmp`,
      `${name}.sha256.tmp`,
      'wanted.4242', // bin/pgwarden-wal-get's, killed before its rename
      '000000010000000000000006',
      '000000010000000000000008',
    ])
      writeFileSync(at(f), '');
    clearSpool(job.spoolDirectory, 7n); // a decoder is writing the .tmp files
    expect([`${name}.tmp`, `${name}.sha256.tmp`, '000000010000000000000008'].every((f) => existsSync(at(f)))).toBe(
      true,
    );
    expect(existsSync(at('000000010000000000000006'))).toBe(false);
    clearSpool(job.spoolDirectory, -1n); // a fetcher starting: those of one killed go
    expect([`${name}.tmp`, `${name}.sha256.tmp`, 'wanted.4242'].some((f) => existsSync(at(f)))).toBe(false);
    expect(existsSync(at('000000010000000000000008'))).toBe(true);
  });

  it('a file spooled in another boot is hashed before it is served', async () => {
    writeFileSync(join(job.archiveDir, `${name}.json`), '{}');
    await spool(job, name, data, sha256);
    const side = join(job.spoolDirectory, `${name}.sha256`);
    const sidecar = JSON.parse(readFileSync(side, 'utf8')) as { file: string };
    expect(sidecar.file).toBe(fileIdentity(join(job.spoolDirectory, name)));
    const otherBoot = sidecar.file.replace(/:[^:]*$/, ':another-boot');
    writeFileSync(side, JSON.stringify({ ...sidecar, file: otherBoot, sha256: 'f'.repeat(64) }));
    expect(await getFromSpool(job, name, join(dir, 'out'))).toBe(false); // hashed: not what the sidecar says
  });
});

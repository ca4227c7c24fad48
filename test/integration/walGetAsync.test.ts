// Prefetching wal-get (walGet.async) under a real standby fed from the archive: replay reaches every
// row through it; a spooled segment is served without the archive's copy; a spooled file corrupted
// on disk is refused and fetched again; a fetcher killed with SIGKILL is replaced by the next call;
// the standby, restarted, goes on through the spool; a segment damaged in the archive is never
// spooled (the fetcher checks only the decoded bytes, and decryption catches the damage first).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGWARDEN, startArchivingCluster, switchAndArchive, type ArchivingSetup } from '../helpers/archiving.js';
import { PASSPHRASE_ENV } from '../helpers/config.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { startStandby, type TestStandby } from '../helpers/standby.js';
import { alive, fetcherPid as walFetcherPid, keyForPostgres, until } from '../helpers/walSpool.js';

let setup: ArchivingSetup;
let standby: TestStandby;
let key: TestKey;
let spoolBase: string;
const spool = () => join(spoolBase, 'main');
const walDir = () => join(setup.repository, 'main', 'wal');
const isRoot = process.getuid?.() === 0;

beforeAll(async () => {
  key = await createTestKey();
  const privateKeyFile = await keyForPostgres(key.privateKeyFile, 'get');
  spoolBase = join(tmpdir(), `pgwarden-get-spool-test-${randomBytes(4).toString('hex')}`);
  setup = await startArchivingCluster({
    taskQueue: 'wal-get-async',
    key: { ...key, privateKeyFile },
    extra: { walGet: { async: true, prefetch: 4, spoolDirectory: spoolBase } },
  });
  await setup.cluster.query('CREATE TABLE t (n int)');
  standby = await startStandby(setup.cluster, 'archivefed');
  await standby.stop();
  // From now on it catches up from the archive alone, through wal-get.
  const restore = `PGWARDEN_FROM_SOURCE=1 ${PASSPHRASE_ENV}=${key.passphrase} ${PGWARDEN} --config ${setup.configFile} wal-get --cluster main %f %p`;
  await appendFile(
    join(standby.dataDir, 'postgresql.auto.conf'),
    `primary_conninfo = ''\nrestore_command = '${restore}'\n`,
  );
}, 120_000);

afterAll(async () => {
  await standby?.remove();
  await setup?.remove();
  const pid = await fetcherPid();
  if (pid) process.kill(pid, 'SIGKILL');
  await Promise.all([key?.remove(), rm(spoolBase, { recursive: true, force: true })]);
});

const fetcherPid = () => walFetcherPid(spool());
const rows = async (q: (sql: string) => Promise<{ n: string }[]>) =>
  Number((await q('SELECT count(*)::text AS n FROM t'))[0]!.n);
/** Some rows, then the segment archived; returns its name. */
const segmentOfRows = async (n: number) => {
  await setup.cluster.query(`INSERT INTO t SELECT generate_series(1, ${n})`);
  return switchAndArchive(setup.cluster);
};
/** wal-get as the PostgreSQL user, into the standby's directory (its user's). */
async function walGet(name: string) {
  const out = join(standby.dataDir, '..', `got-${name}`);
  const argv = [PGWARDEN, '--config', setup.configFile, 'wal-get', '--cluster', 'main', name, out];
  const run = await execa(isRoot ? 'runuser' : argv[0]!, isRoot ? ['-u', 'postgres', '--', ...argv] : argv.slice(1), {
    reject: false,
    env: { PGWARDEN_FROM_SOURCE: '1', [PASSPHRASE_ENV]: key.passphrase },
  });
  const sha256 = existsSync(out)
    ? createHash('sha256')
        .update(await readFile(out))
        .digest('hex')
    : '';
  await rm(out, { force: true });
  return { ...run, sha256 };
}
const recordOf = async (name: string) =>
  JSON.parse(await readFile(join(walDir(), `${name}.json`), 'utf8')) as { stored: string; rawSha256: string };

describe('prefetching wal-get', () => {
  let last = '';
  it('a standby catching up from the archive replays through it and reaches every row', async () => {
    for (let i = 0; i < 6; i++) last = await segmentOfRows(1000);
    await standby.start();
    await until('the standby has every row', async () => (await rows((s) => standby.query(s)).catch(() => 0)) === 6000);
    expect(await fetcherPid()).toBeGreaterThan(0); // the first wal-get started a fetcher
    await standby.stop();
  }, 120_000);

  const next: string[] = [];
  it("serves a spooled segment even with the archive's copy gone", async () => {
    for (let i = 0; i < 3; i++) next.push(await segmentOfRows(10));
    expect((await walGet(last)).exitCode).toBe(0); // recovery is here: the fetcher decodes the next ones
    await until('the fetcher spooled three', () => next.every((n) => existsSync(join(spool(), n))));
    const record = await recordOf(next[0]!);
    await rename(join(walDir(), record.stored), join(walDir(), `${record.stored}.aside`));
    try {
      const got = await walGet(next[0]!);
      expect(got.exitCode, got.stderr).toBe(0);
      expect(got.sha256).toBe(record.rawSha256);
    } finally {
      await rename(join(walDir(), `${record.stored}.aside`), join(walDir(), record.stored));
    }
  }, 60_000);

  it('refuses a spooled file corrupted on disk and fetches the segment from the archive', async () => {
    const file = join(spool(), next[1]!);
    const data = await readFile(file);
    data[1000] = data[1000]! ^ 0xff;
    await writeFile(file, data);
    const got = await walGet(next[1]!);
    expect(got.exitCode, got.stderr).toBe(0);
    expect(got.stderr).toMatch(new RegExp(`spooled ${next[1]} is corrupt`));
    expect(got.sha256).toBe((await recordOf(next[1]!)).rawSha256);
  }, 60_000);

  it('after the fetcher is killed (SIGKILL) the next call works and starts a new fetcher', async () => {
    const killed = await fetcherPid();
    expect(killed).toBeGreaterThan(0); // (process.kill(0) would kill this test's own process group)
    expect(alive(killed)).toBe(true);
    process.kill(killed, 'SIGKILL');
    await until('the fetcher is gone', () => !alive(killed));
    const got = await walGet(next[2]!);
    expect(got.exitCode, got.stderr).toBe(0);
    expect(got.sha256).toBe((await recordOf(next[2]!)).rawSha256);
    await until('a new fetcher holds the spool', async () => {
      const pid = await fetcherPid();
      return pid !== killed && pid > 0 && alive(pid);
    });
  }, 60_000);

  it('the standby, restarted, goes on through the spool to the newest rows', async () => {
    await segmentOfRows(5);
    await standby.start();
    await until(
      'the standby has the newest rows',
      async () => (await rows((s) => standby.query(s)).catch(() => 0)) === 6035,
    );
  }, 120_000);

  it('never spools a segment whose stored bytes were damaged: wal-get stops recovery naming it', async () => {
    await standby.stop();
    const fetcher = await fetcherPid();
    if (fetcher > 0 && alive(fetcher)) process.kill(fetcher, 'SIGKILL'); // nothing decodes it before the damage
    await until('the fetcher is gone', () => fetcher === 0 || !alive(fetcher));
    const name = await segmentOfRows(5);
    const stored = join(walDir(), (await recordOf(name)).stored);
    const data = await readFile(stored);
    data[data.length >> 1] = data[data.length >> 1]! ^ 0x01;
    await writeFile(stored, data);
    const got = await walGet(name);
    expect(got.exitCode, got.stderr).toBe(126);
    expect(got.stderr).toMatch(new RegExp(`${name}\\S* is corrupt`));
    expect(got.sha256).toBe('');
    expect(existsSync(join(spool(), `${name}.error`))).toBe(true); // the fetcher refused it first
    expect(await readFile(join(spool(), 'fetcher.log'), 'utf8')).toContain(`${name}: cannot decrypt`);
  }, 60_000);
});

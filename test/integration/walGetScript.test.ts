// bin/pgwarden-wal-get, the restore_command that serves a prefetched segment without Node, under a
// real standby fed from the archive. Its trace (PGWARDEN_WAL_GET_TRACE) says which calls it served
// and which it handed to `pgwarden wal-get`: replay goes through it; a spooled file changed after
// the fetcher left it is refused and the Node path serves the right bytes; a killed fetcher is
// started again by the Node path; history files and another cluster's spool go to Node.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGWARDEN, startArchivingCluster, switchAndArchive, type ArchivingSetup } from '../helpers/archiving.js';
import { PASSPHRASE_ENV } from '../helpers/config.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { startStandby, type TestStandby } from '../helpers/standby.js';
import { alive, fetcherPid as walFetcherPid, keyForPostgres, until } from '../helpers/walSpool.js';

const SCRIPT = join(PGWARDEN, '..', 'pgwarden-wal-get');
let setup: ArchivingSetup;
let standby: TestStandby;
let key: TestKey;
let spoolBase: string;
let trace: string;
const spool = () => join(spoolBase, 'main');
const walDir = () => join(setup.repository, 'main', 'wal');
const isRoot = process.getuid?.() === 0;

beforeAll(async () => {
  key = await createTestKey();
  const privateKeyFile = await keyForPostgres(key.privateKeyFile, 'script');
  spoolBase = join(tmpdir(), `pgwarden-script-spool-${randomBytes(4).toString('hex')}`);
  setup = await startArchivingCluster({
    taskQueue: 'wal-get-script',
    key: { ...key, privateKeyFile },
    extra: { walGet: { async: true, prefetch: 4, spoolDirectory: spoolBase } },
  });
  await setup.cluster.query('CREATE TABLE t (n int)');
  standby = await startStandby(setup.cluster, 'scriptfed');
  await standby.stop();
  trace = join(standby.dataDir, '..', 'wal-get.trace');
  const env = `PGWARDEN_FROM_SOURCE=1 ${PASSPHRASE_ENV}=${key.passphrase} PGWARDEN_WAL_GET_TRACE=${trace}`;
  const restore = `${env} ${SCRIPT} --config ${setup.configFile} --cluster main --spool ${spool()} %f %p`;
  await appendFile(
    join(standby.dataDir, 'postgresql.auto.conf'),
    `primary_conninfo = ''\nrestore_command = '${restore}'\n`,
  );
}, 120_000);

afterAll(async () => {
  await standby?.remove();
  await setup?.remove();
  const pid = await fetcherPid();
  if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
  await Promise.all([key?.remove(), rm(spoolBase, { recursive: true, force: true })]);
});

const fetcherPid = () => walFetcherPid(spool());
const rows = async () => Number((await standby.query('SELECT count(*)::text AS n FROM t'))[0]!.n);
const segmentOfRows = async (n: number) => {
  await setup.cluster.query(`INSERT INTO t SELECT generate_series(1, ${n})`);
  return switchAndArchive(setup.cluster);
};
const traced = async () => (await readFile(trace, 'utf8').catch(() => '')).split('\n').filter(Boolean);
/** The script as the PostgreSQL user; the trace's new line for this call. */
async function script(name: string, cluster = 'main') {
  const out = join(standby.dataDir, '..', `got-${name}`);
  const argv = [SCRIPT, '--config', setup.configFile, '--cluster', cluster, '--spool', spool(), name, out];
  const before = (await traced()).length;
  const run = await execa(isRoot ? 'runuser' : argv[0]!, isRoot ? ['-u', 'postgres', '--', ...argv] : argv.slice(1), {
    reject: false,
    env: { PGWARDEN_FROM_SOURCE: '1', [PASSPHRASE_ENV]: key.passphrase, PGWARDEN_WAL_GET_TRACE: trace },
  });
  const sha256 = existsSync(out)
    ? createHash('sha256')
        .update(await readFile(out))
        .digest('hex')
    : '';
  await rm(out, { force: true });
  return { ...run, sha256, line: (await traced()).slice(before).join('\n') };
}
const rawSha256 = async (name: string) =>
  (JSON.parse(await readFile(join(walDir(), `${name}.json`), 'utf8')) as { rawSha256: string }).rawSha256;

describe('bin/pgwarden-wal-get', () => {
  it('shell syntax', async () => {
    await execa('sh', ['-n', SCRIPT]);
  });

  let last = '';
  it('a standby catching up from the archive is served by the script, history files by Node', async () => {
    for (let i = 0; i < 8; i++) last = await segmentOfRows(1000);
    await standby.start();
    await until('the standby has every row', async () => (await rows().catch(() => 0)) === 8000);
    const lines = await traced();
    const served = lines.filter((l) => l.startsWith('served '));
    expect(served.length, lines.join('\n')).toBeGreaterThanOrEqual(3); // the fetcher was ahead of replay
    expect(
      lines.some((l) => /^node [0-9A-F]{8}\.history not a segment$/.test(l)),
      lines.join('\n'),
    ).toBe(true);
    await standby.stop();
  }, 120_000);

  const next: string[] = [];
  it('a spooled file changed after the fetcher left it is refused; Node serves the right bytes', async () => {
    for (let i = 0; i < 3; i++) next.push(await segmentOfRows(10));
    await script(last); // recovery is here: the fetcher decodes the next ones
    await until('the fetcher spooled three', () => next.every((n) => existsSync(join(spool(), `${n}.sha256`))));
    const served = await script(next[0]!);
    expect(served.exitCode, served.stderr).toBe(0);
    expect(served.line).toBe(`served ${next[0]}`);
    expect(served.sha256).toBe(await rawSha256(next[0]!));
    expect(await readFile(join(spool(), 'wanted'), 'utf8')).toBe(next[1]); // as the Node path records it

    const corrupt = join(spool(), next[1]!);
    const data = await readFile(corrupt);
    data[1000] = data[1000]! ^ 0xff;
    await writeFile(corrupt, data);
    const refused = await script(next[1]!);
    expect(refused.line).toBe(`node ${next[1]} changed since spooled`);
    expect(refused.exitCode, refused.stderr).toBe(0);
    expect(refused.stderr).toMatch(new RegExp(`spooled ${next[1]} is corrupt`));
    expect(refused.sha256).toBe(await rawSha256(next[1]!));

    // The same bytes with another mtime: not the file the fetcher left, so Node hashes it again.
    await utimes(join(spool(), next[2]!), new Date(), new Date(Date.now() - 60_000));
    const touched = await script(next[2]!);
    expect(touched.line).toBe(`node ${next[2]} changed since spooled`);
    expect(touched.exitCode, touched.stderr).toBe(0);
    expect(touched.sha256).toBe(await rawSha256(next[2]!));
  }, 60_000);

  it("a killed fetcher is started again by the Node path; another cluster's spool is never served", async () => {
    const killed = await fetcherPid();
    expect(killed).toBeGreaterThan(0);
    process.kill(killed, 'SIGKILL');
    await until('the fetcher is gone', () => !alive(killed));
    const a = await segmentOfRows(5);
    const b = await segmentOfRows(5);
    const got = await script(a);
    expect(got.line).toBe(`node ${a} not spooled`);
    expect(got.exitCode, got.stderr).toBe(0);
    expect(got.sha256).toBe(await rawSha256(a));
    await until('a new fetcher spooled the next', () => existsSync(join(spool(), `${b}.sha256`)));
    expect(await fetcherPid()).not.toBe(killed);
    const other = await script(b, 'other');
    expect(other.line).toBe(`node ${b} another spool`);
    expect(other.exitCode).not.toBe(0); // the config has no cluster "other"
    expect(existsSync(join(spool(), b))).toBe(true);
  }, 60_000);

  it('the standby, restarted, goes on through the script to the newest rows', async () => {
    const before = (await traced()).filter((l) => l.startsWith('served ')).length;
    await standby.start();
    await until('the standby has the newest rows', async () => (await rows().catch(() => 0)) === 8040);
    expect((await traced()).filter((l) => l.startsWith('served ')).length).toBeGreaterThan(before);
  }, 120_000);
});

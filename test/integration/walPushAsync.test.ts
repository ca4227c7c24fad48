// Asynchronous wal-push (walPush.async) under a real PostgreSQL archiver: the pusher archives what
// PostgreSQL marks ready, archive_command answers once its file's record is there, a conflict
// reaches PostgreSQL as a failed archive_command that names the file, and a pusher killed mid-run
// is replaced by the next archive_command, which removes the gpg directory the dead one left.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, copyFile, mkdir, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGWARDEN, startArchivingCluster, switchAndArchive, type ArchivingSetup } from '../helpers/archiving.js';
import { PASSPHRASE_ENV } from '../helpers/config.js';
import { shellBlocks } from '../helpers/docs.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';

let setup: ArchivingSetup;
let key: TestKey;
let spool: string;
const walDir = () => join(setup.repository, 'main', 'wal');

beforeAll(async () => {
  key = await createTestKey();
  // Under /tmp: the PostgreSQL user creates it at the first archive_command, as on a real host.
  spool = join(tmpdir(), `pgwarden-spool-test-${randomBytes(4).toString('hex')}`);
  setup = await startArchivingCluster({
    taskQueue: 'wal-push-async',
    key,
    extra: { walPush: { async: true, processes: 2, waitSeconds: 20, spoolDirectory: spool } },
  });
});

afterAll(async () => {
  await setup?.remove();
  const pid = await pusherPid();
  if (pid) process.kill(pid, 'SIGKILL'); // it would leave by itself after 10 s idle
  await Promise.all([key?.remove(), rm(spool, { recursive: true, force: true })]);
});

const segmentsArchived = async () => (await readdir(walDir())).filter((f) => /^[0-9A-F]{24}\.json$/.test(f)).length;
const pusherPid = async () =>
  (JSON.parse(await readFile(join(spool, 'main', 'pusher.pid'), 'utf8').catch(() => '{}')) as { pid?: number }).pid ??
  0;
const archiver = async () =>
  (
    await setup.cluster.query<{ archived: string; failed: string; last_failed: string | null }>(
      'SELECT archived_count::text AS archived, failed_count::text AS failed, last_failed_wal AS last_failed FROM pg_stat_archiver',
    )
  )[0]!;

describe('asynchronous wal-push', () => {
  it('archives every segment PostgreSQL hands over, through one pusher, readable by wal-get', async () => {
    const before = await segmentsArchived();
    let last = '';
    for (let i = 0; i < 5; i++) {
      await setup.cluster.query(`CREATE TABLE IF NOT EXISTS t (n int); INSERT INTO t SELECT generate_series(1, 1000)`);
      last = await switchAndArchive(setup.cluster);
    }
    expect(await segmentsArchived()).toBeGreaterThanOrEqual(before + 5);
    expect((await archiver()).failed).toBe('0');
    expect(await pusherPid()).toBeGreaterThan(0); // the pusher ran (it stays a while for more)

    const out = join(setup.dir, 'fetched');
    const got = await execa(PGWARDEN, ['--config', setup.configFile, 'wal-get', '--cluster', 'main', last, out], {
      reject: false,
      env: { PGWARDEN_FROM_SOURCE: '1', [PASSPHRASE_ENV]: key.passphrase },
    });
    expect(got.exitCode, got.stderr).toBe(0);
    expect((await readFile(out)).length).toBe(16 * 1024 * 1024);
  });

  it('the runbook (docs/runbook.md) finds the DELETE: wal-get into a file named as the segment, then pg_waldump, as printed', async () => {
    await setup.cluster.query('DELETE FROM t WHERE n <= 3');
    const seg = await switchAndArchive(setup.cluster);
    const block = (await shellBlocks()).find((b) => b.includes('pg_waldump /tmp/wal/'));
    expect(block).toBeDefined();
    const dir = join(setup.dir, 'runbook');
    const script = block!
      .replace(/^ {3}/gm, '')
      .replace(/^seg=[0-9A-F]{24}$/m, `seg=${seg}`)
      .replaceAll('/tmp/wal', dir)
      .replaceAll('pgwarden wal-get', `${PGWARDEN} --config ${setup.configFile} wal-get`);
    expect(script).toContain(`seg=${seg}`);
    const env = { PATH: process.env.PATH!, PGWARDEN_FROM_SOURCE: '1', [PASSPHRASE_ENV]: key.passphrase };
    const run = await execa('bash', ['-e', '-c', script], { env, extendEnv: false, reject: false });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/desc: DELETE/);
    expect(run.stdout).toMatch(/desc: COMMIT \d{4}-\d\d-\d\d/);
    // The form printed before: under another name pg_waldump cannot tell which segment it reads.
    await copyFile(join(dir, seg), join(dir, 'seg'));
    const renamed = await execa('pg_waldump', [join(dir, 'seg')], { reject: false, env, extendEnv: false });
    expect(renamed.exitCode).not.toBe(0);
    expect(renamed.stderr).toMatch(/no start WAL location given/);
  });

  it('fails the archive_command of a file archived already with other content, naming it, and goes on once that is resolved', async () => {
    // Some WAL first: at a segment boundary pg_walfile_name names the previous (archived) segment.
    // The insert position, not the write position, which lags where commits are asynchronous.
    await setup.cluster.query('INSERT INTO t SELECT generate_series(1, 10)');
    const next = (
      await setup.cluster.query<{ wal: string }>('SELECT pg_walfile_name(pg_current_wal_insert_lsn()) AS wal')
    )[0]!.wal;
    // Another cluster's file under the same name (two clusters sharing one archive).
    const record = {
      name: next,
      stored: `${next}.zst.gpg`,
      bytes: 3,
      sha256: 'a'.repeat(64),
      rawBytes: 16777216,
      rawSha256: 'b'.repeat(64),
      compression: 'zstd',
      encrypted: true,
      archivedAt: new Date().toISOString(),
    };
    await writeFile(join(walDir(), `${next}.zst.gpg`), 'xyz');
    await writeFile(join(walDir(), `${next}.json`), JSON.stringify(record));
    const failedBefore = Number((await archiver()).failed);
    await setup.cluster.query('SELECT pg_switch_wal()');
    const deadline = Date.now() + 30_000;
    while (Number((await archiver()).failed) === failedBefore && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
    const state = await archiver();
    expect(Number(state.failed)).toBeGreaterThan(failedBefore);
    expect(state.last_failed).toBe(next);
    // What PostgreSQL logged of the failed archive_command names the file and the cause.
    const log = await readFile(join(setup.cluster.dataDir, '..', 'server.log'), 'utf8');
    expect(log).toMatch(new RegExp(`WAL file ${next} is archived already with different content`));

    // The operator removes the foreign file; the next segment wakes the archiver, which retries.
    await rm(join(walDir(), `${next}.json`));
    await rm(join(walDir(), `${next}.zst.gpg`));
    await setup.cluster.query('INSERT INTO t SELECT generate_series(1, 10)');
    await switchAndArchive(setup.cluster);
    expect(JSON.parse(await readFile(join(walDir(), `${next}.json`), 'utf8')).rawSha256).not.toBe('b'.repeat(64));
  });

  it('replaces a pusher that died (SIGKILL): the next archive_command starts another, and nothing half-written is left', async () => {
    await setup.cluster.query('INSERT INTO t SELECT generate_series(1, 10)');
    await switchAndArchive(setup.cluster);
    const first = await pusherPid();
    expect(first).toBeGreaterThan(0);
    process.kill(first, 'SIGKILL');
    for (let i = 0; i < 3; i++) {
      await setup.cluster.query('INSERT INTO t SELECT generate_series(1, 10)');
      await switchAndArchive(setup.cluster);
    }
    const second = await pusherPid();
    expect(second).toBeGreaterThan(0);
    expect(second).not.toBe(first);
    expect(await readdir(walDir())).not.toContainEqual(expect.stringMatching(/\.partial$/));
  });

  it("removes the gpg directory a killed pusher left behind, never a live push's or another user's", async () => {
    await setup.cluster.query('INSERT INTO t SELECT generate_series(1, 10)');
    await switchAndArchive(setup.cluster);
    const dead = await pusherPid();
    expect(dead).toBeGreaterThan(0);
    process.kill(dead, 'SIGKILL');
    // What a pusher killed mid-push leaves in its tmpdir (the PostgreSQL user's), next to a live
    // push's directory (this test process stands for it), another user's, and two of the older
    // unnamed form: one old (nobody's), one fresh (maybe a push running now).
    const tmp = tmpdir();
    const suffix = randomBytes(3).toString('hex');
    const dirs = {
      dead: join(tmp, `pgwarden-walpush-${dead}-${suffix}`),
      live: join(tmp, `pgwarden-walpush-${process.pid}-${suffix}`),
      otherUser: join(tmp, `pgwarden-walpush-${dead}-x${suffix.slice(1)}`),
      unnamedOld: join(tmp, `pgwarden-walpush-o${suffix.slice(1)}`),
      unnamedFresh: join(tmp, `pgwarden-walpush-f${suffix.slice(1)}`),
    };
    const postgres =
      process.getuid?.() === 0 ? Number((await execa('id', ['-u', 'postgres'])).stdout) : process.getuid!();
    for (const [what, dir] of Object.entries(dirs)) {
      await mkdir(dir, { mode: 0o700 });
      await writeFile(join(dir, 'pubring.kbx'), 'keyring');
      if (what !== 'otherUser') await chown(dir, postgres, -1);
    }
    if (postgres === process.getuid?.()) await rm(dirs.otherUser, { recursive: true }); // no other user to be
    const hoursAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(dirs.unnamedOld, hoursAgo, hoursAgo);
    try {
      await setup.cluster.query('INSERT INTO t SELECT generate_series(1, 10)');
      await switchAndArchive(setup.cluster);
      expect(await pusherPid()).not.toBe(dead);
      expect(existsSync(dirs.dead)).toBe(false);
      expect(existsSync(dirs.unnamedOld)).toBe(false);
      expect(existsSync(dirs.live)).toBe(true);
      expect(existsSync(dirs.unnamedFresh)).toBe(true);
      if (postgres !== process.getuid?.()) expect(existsSync(dirs.otherUser)).toBe(true);
      expect(await readFile(join(spool, 'main', 'pusher.log'), 'utf8')).toContain(
        `removed ${dirs.dead}, left by a push that died`,
      );
    } finally {
      await Promise.all(Object.values(dirs).map((d) => rm(d, { recursive: true, force: true })));
    }
  });

  it('stores again a file whose record survived but whose data did not (a damaged archive)', async () => {
    // A data directory of its own, as PostgreSQL leaves it: a segment in pg_wal, marked ready.
    const data = join(setup.dir, 'other-data');
    const name = '00000001000000FF00000001';
    await mkdir(join(data, 'pg_wal', 'archive_status'), { recursive: true });
    await writeFile(join(data, 'pg_wal', name), Buffer.concat([randomBytes(1 << 20), Buffer.alloc(15 << 20)]));
    await writeFile(join(data, 'pg_wal', 'archive_status', `${name}.ready`), '');
    // Its own spool: a pusher serves the one pg_wal it was started for.
    const config = JSON.parse(await readFile(setup.configFile, 'utf8')) as { walPush: { spoolDirectory: string } };
    config.walPush.spoolDirectory = join(setup.dir, 'spool-other');
    const configFile = join(setup.dir, 'other.config.json');
    await writeFile(configFile, JSON.stringify(config));
    const push = () =>
      execa(PGWARDEN, ['--config', configFile, 'wal-push', '--cluster', 'main', `pg_wal/${name}`, name], {
        reject: false,
        cwd: data,
        env: { PGWARDEN_FROM_SOURCE: '1' },
      });
    const first = await push();
    expect(first.exitCode, first.stderr).toBe(0);
    const record = JSON.parse(await readFile(join(walDir(), `${name}.json`), 'utf8')) as { stored: string };
    await rm(join(walDir(), record.stored));
    const again = await push();
    expect(again.exitCode, again.stderr).toBe(0);
    const restored = JSON.parse(await readFile(join(walDir(), `${name}.json`), 'utf8')) as {
      stored: string;
      bytes: number;
    };
    expect((await readFile(join(walDir(), restored.stored))).length).toBe(restored.bytes);
  });
});

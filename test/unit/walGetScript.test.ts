// bin/pgwarden-wal-get without PostgreSQL: a copy beside a stand-in `pgwarden` that records its
// arguments. The script must compute the very identity the Node path records (fileIdentity), write
// `wanted` as the Node path does, and hand anything else to pgwarden with the same arguments.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configIdentity, fileIdentity } from '../../src/archive/getSpool.js';

const SCRIPT = join(import.meta.dirname, '../../bin/pgwarden-wal-get');
let dir: string;
let spool: string;
let config: string;
const archive = '/repo/main/wal';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-script-unit-'));
  await mkdir(join(dir, 'bin'));
  await copyFile(SCRIPT, join(dir, 'bin', 'pgwarden-wal-get'));
  await writeFile(join(dir, 'bin', 'pgwarden'), `#!/bin/sh\nprintf '%s\\n' "$@" > "${dir}/node-args"\nexit 7\n`);
  await chmod(join(dir, 'bin', 'pgwarden'), 0o755);
  config = join(dir, 'pgwarden.json');
  await writeFile(config, '{}');
  await mkdir(join(dir, 'spools'), { mode: 0o700 });
  spool = join(dir, 'spools', 'main');
  await mkdir(spool, { mode: 0o700 });
  await new Promise((r) => setTimeout(r, 20)); // `serving` strictly newer than the config
  await writeServing();
});

/** `serving` as wal-get writes it: config, cluster, archive, the config's identity, the overrides. */
async function writeServing(overrides = 'no overrides') {
  await writeFile(
    join(spool, 'serving'),
    `${config}\nmain\n${JSON.stringify(archive)}\n${configIdentity(config)}\n${overrides}\n`,
  );
}
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A segment as the fetcher leaves it: the file, then its sidecar naming it. */
async function spoolSegment(name: string, identity?: string) {
  await writeFile(join(spool, name), `bytes of ${name}`);
  const file = identity ?? fileIdentity(join(spool, name));
  await writeFile(
    join(spool, `${name}.sha256`),
    JSON.stringify({ sha256: 'ab'.repeat(32), archiveDir: archive, file }),
  );
}
function run(name: string, extra: string[] = [], cluster = 'main', env: NodeJS.ProcessEnv = process.env) {
  const out = join(dir, `out-${name.replace(/\//g, '_')}`);
  const args = ['--config', config, '--cluster', cluster, '--spool', spool, ...extra, name, out];
  const r = spawnSync(join(dir, 'bin', 'pgwarden-wal-get'), args, { encoding: 'utf8', env });
  return { code: r.status, out, node: existsSync(join(dir, 'node-args')) };
}

describe('bin/pgwarden-wal-get', () => {
  it('is valid sh (and shellcheck-clean when shellcheck is installed)', () => {
    execFileSync('sh', ['-n', SCRIPT]);
    if (spawnSync('shellcheck', ['--version']).status === 0) execFileSync('shellcheck', ['-s', 'sh', SCRIPT]);
  });

  it("serves a segment whose identity is the one the Node path records, and moves 'wanted' as it does", async () => {
    await rm(join(dir, 'node-args'), { force: true });
    await spoolSegment('0000000100000003000000FF');
    const r = run('0000000100000003000000FF');
    expect(r).toMatchObject({ code: 0, node: false });
    expect(await readFile(r.out, 'utf8')).toBe('bytes of 0000000100000003000000FF');
    expect(await readFile(join(spool, 'wanted'), 'utf8')).toBe('000000010000000400000000');
    expect((await readdir(spool)).filter((f) => f.startsWith('wanted.'))).toEqual([]);
    expect(existsSync(join(spool, '0000000100000003000000FF'))).toBe(false);
    expect(existsSync(join(spool, '0000000100000003000000FF.sha256'))).toBe(false);
  });

  it('hands everything else to pgwarden wal-get with the same config, cluster and files', async () => {
    const refused: [string, () => Promise<unknown>, string[]?, string?][] = [
      ['00000002.history', async () => undefined],
      ['000000010000000000000001.partial', async () => undefined],
      ['000000010000000000000100', () => spoolSegment('000000010000000000000100')], // not a segment number
      ['../spools/main/x', async () => undefined],
      ['000000010000000000000002', async () => undefined], // not spooled
      ['000000010000000000000003', () => spoolSegment('000000010000000000000003', 'another:file')],
      ['000000010000000000000004', () => spoolSegment('000000010000000000000004'), [], 'other'],
    ];
    for (const [name, prepare, extra, cluster] of refused) {
      await rm(join(dir, 'node-args'), { force: true });
      await prepare();
      const r = run(name, extra, cluster);
      expect({ name, code: r.code, node: r.node }).toEqual({ name, code: 7, node: true });
      expect((await readFile(join(dir, 'node-args'), 'utf8')).trim().split('\n')).toEqual([
        '--config',
        config,
        'wal-get',
        '--cluster',
        cluster ?? 'main',
        name,
        r.out,
      ]);
    }
    // A symlink in the spool, even to a file whose identity the sidecar names, is never followed.
    await rm(join(dir, 'node-args'), { force: true });
    await writeFile(join(dir, 'elsewhere'), 'other bytes');
    await symlink(join(dir, 'elsewhere'), join(spool, '000000010000000000000005'));
    await writeFile(
      join(spool, '000000010000000000000005.sha256'),
      JSON.stringify({ sha256: 'ab'.repeat(32), archiveDir: archive, file: fileIdentity(join(dir, 'elsewhere')) }),
    );
    expect(run('000000010000000000000005')).toMatchObject({ code: 7, node: true });

    // Installed as a symlink elsewhere: pgwarden is found beside the script itself.
    await rm(join(dir, 'node-args'), { force: true });
    await mkdir(join(dir, 'elsewhere-bin'), { recursive: true });
    await symlink(join(dir, 'bin', 'pgwarden-wal-get'), join(dir, 'elsewhere-bin', 'wal-get-link'));
    const args = ['--config', config, '--cluster', 'main', '--spool', spool, '00000002.history', join(dir, 'o')];
    expect(spawnSync(join(dir, 'elsewhere-bin', 'wal-get-link'), args).status).toBe(7);
    expect(existsSync(join(dir, 'node-args'))).toBe(true);
  });

  it('goes to pgwarden when the config is another file than `serving` names, or overrides are in force', async () => {
    const node = async (name: string, env?: NodeJS.ProcessEnv) => {
      await rm(join(dir, 'node-args'), { force: true });
      await spoolSegment(name);
      return run(name, [], 'main', env);
    };
    // Overrides in force when `serving` was written, or in the script's environment.
    await writeServing('overrides');
    expect(await node('000000010000000000000020')).toMatchObject({ code: 7, node: true });
    await writeServing();
    const env = { ...process.env, PGWARDEN__walGet__async: 'false' };
    expect(await node('000000010000000000000021', env)).toMatchObject({ code: 7, node: true });
    expect(await node('000000010000000000000022')).toMatchObject({ code: 0, node: false });

    // The config replaced by a copy naming another archive, its mtime older than `serving`'s.
    const copy = join(dir, 'copy.json');
    await writeFile(copy, '{"other":"archive"}');
    const old = new Date(Date.now() - 3_600_000);
    await utimes(copy, old, old);
    await rename(copy, config);
    expect(await node('000000010000000000000023')).toMatchObject({ code: 7, node: true });
    await writeServing(); // as the next wal-get writes it
    expect(await node('000000010000000000000024')).toMatchObject({ code: 0, node: false });
  });

  it('takes --opt=value and -c forms; any call it cannot read exits 126 (fatal), never 1, without pgwarden', async () => {
    await rm(join(dir, 'node-args'), { force: true });
    await spoolSegment('000000010000000000000010');
    const out = join(dir, 'out-forms');
    const forms = [`-c${config}`, `--cluster=main`, `--spool=${spool}`, '000000010000000000000010', out];
    const served = spawnSync(join(dir, 'bin', 'pgwarden-wal-get'), forms, { encoding: 'utf8' });
    expect({ code: served.status, node: existsSync(join(dir, 'node-args')) }).toEqual({ code: 0, node: false });
    expect(await readFile(out, 'utf8')).toBe('bytes of 000000010000000000000010');
    await spoolSegment('000000010000000000000011');
    const short = [
      '-c',
      config,
      '--config=' + config,
      '--cluster',
      'main',
      '--spool',
      spool,
      '000000010000000000000011',
      out,
    ];
    expect(spawnSync(join(dir, 'bin', 'pgwarden-wal-get'), short).status).toBe(0);

    const seg = '000000010000000000000012';
    const unreadable = [
      [],
      ['--config', config, '--cluster', 'main', '--spool', spool, '--bogus', seg, out],
      ['--config', config, '--cluster', 'main', '--spool', spool, '-x', seg, out],
      ['--config', config, '--spool', spool, seg, out], // no cluster
      ['--cluster', 'main', '--spool', spool, seg, out], // no config
      ['--config', config, '--cluster', 'main', '--spool', spool, seg], // no %p
      ['--config', config, '--cluster', 'main', '--spool', spool, seg, out, 'third'],
      ['--config', config, '--cluster', 'main', '--spool'], // option without its value
      ['--config', config, '--cluster'],
      ['-c'],
      ['--config', config, '--cluster', 'main', '--spool', spool, '--', seg, out],
    ];
    for (const args of unreadable) {
      await rm(join(dir, 'node-args'), { force: true });
      const r = spawnSync(join(dir, 'bin', 'pgwarden-wal-get'), args, { encoding: 'utf8' });
      expect({ args, code: r.status, node: existsSync(join(dir, 'node-args')) }).toEqual({
        args,
        code: 126,
        node: false,
      });
      expect(r.stderr).toMatch(/^pgwarden-wal-get: cannot read its arguments/);
    }
  });
});

describe('pgwarden wal-get and wal-push usage mistakes', () => {
  it('exit 126, which stops recovery, never 1 ("not in the archive"); wal-push stays nonzero', async () => {
    const run = promisify(execFile);
    const pgwarden = join(import.meta.dirname, '../../bin/pgwarden');
    const env = { ...process.env, PGWARDEN_FROM_SOURCE: '1' };
    const calls = [
      [
        '--config',
        '/nonexistent.json',
        'wal-get',
        '--cluster',
        'main',
        '--spool',
        '/x',
        '000000010000000000000001',
        '/tmp/x',
      ],
      ['--config', '/nonexistent.json', 'wal-get', '000000010000000000000001', '/tmp/x'],
      ['--bogus', 'wal-get', '--cluster', 'main', '000000010000000000000001', '/tmp/x'],
      ['--config', '/nonexistent.json', 'wal-push', '--cluster', 'main', 'only-one'],
      ['--config', '/nonexistent.json', 'wal-push', '--bogus', '--cluster', 'main', 'a', 'b'],
    ];
    const codes = await Promise.all(
      calls.map((args) =>
        run(pgwarden, args, { env }).then(
          () => 0,
          (err: { code: number }) => err.code,
        ),
      ),
    );
    expect(codes).toEqual([126, 126, 126, 126, 126]);
  }, 60_000);
});

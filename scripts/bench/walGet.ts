// npm run bench:wal-get — how fast recovery replays archived WAL through restore_command:
// `cp` from plain files, the built `pgwarden wal-get` one call per segment (walGet.async off), and
// the prefetching wal-get (walGet.async on, prefetch 8).
//
// A cluster archiving through `pgwarden wal-push` (encrypted, as the postgres user), a copy of it
// taken with pg_basebackup, then about --wal-mb of WAL from inserts, all archived; the cluster is
// stopped so that the archive stays as it is and nothing else competes for the cores. Every archived
// segment is decoded once by the synchronous wal-get into a plain directory (the `cp` side's source;
// those calls time the synchronous wal-get alone). Then, --runs rounds (default 3), the three sides
// alternating: the copy laid down again, recovery.signal, the restore_command wrapped to time each
// call, pg_ctl start, timed until pg_is_in_recovery() = false (the end of the archive reached).
// Before those rounds, the wal-get of segments the fetcher has spooled already, timed alone.
// Prints the figures and, last, one JSON line. Options: --wal-mb N (default 1024), --runs N;
// --before <git revision> adds a fourth side, the prefetching wal-get built from that revision, in
// the same rounds (a before/after under the same load on shared cores); --no-sync leaves the
// synchronous wal-get out of the rounds (it still decodes the cp side's plain files). The `script`
// side is bin/pgwarden-wal-get (a spooled segment served without Node, the rest by the built CLI)
// with the prefetching config, its own spool; its served calls are timed alone as the others'.
import { existsSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import pg from 'pg';
import { startArchivingCluster, switchAndArchive, type ArchivingSetup } from '../../test/helpers/archiving.js';
import { PASSPHRASE_ENV } from '../../test/helpers/config.js';
import { createTestKey, type TestKey } from '../../test/helpers/gpg.js';
import { freePort } from '../../test/helpers/ports.js';
import { PG_BIN } from '../../test/helpers/require.js';
import { buildDist, median, option } from './worker.js';

const walMb = option('--wal-mb', 1024);
const runs = option('--runs', 3);
const beforeRev = process.argv.includes('--before') ? process.argv[process.argv.indexOf('--before') + 1] : undefined;
if (beforeRev !== undefined && !/^[\w./~^-]+$/.test(beforeRev))
  throw new Error(`--before ${beforeRev}: not a revision`);
const withSync = !process.argv.includes('--no-sync');
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
type Mode = 'sync' | 'async' | 'before' | 'script';
const log = (line: string) => console.log(line);
const isRoot = process.getuid?.() === 0;
const SEGMENT = /^[0-9A-F]{24}$/;
const since = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const p50 = (xs: number[]) => (xs.length ? median(xs, (x) => x) : NaN);
const asPostgres = (cmd: string, args: string[], env: Record<string, string> = {}) =>
  isRoot ? execa('runuser', ['-u', 'postgres', '--', cmd, ...args], { env }) : execa(cmd, args, { env });

// Each call's exit code, milliseconds and file name, appended to $1.
const TIMED = `#!/bin/bash
log=$1; shift
s=$(date +%s%N)
"$@"; rc=$?
f=\${@: -2:1}
echo "$rc $(( ($(date +%s%N) - s) / 1000000 )) \${f##*/}" >> "$log"
exit $rc
`;

/** The fetcher would leave by itself after 30 s idle; the next side should not share the cores with it. */
async function stopFetcher(work: string, mode: Mode): Promise<void> {
  const lock = await readFile(join(work, `spool-${mode}/main/fetcher.pid`), 'utf8').catch(() => '{}');
  const { pid } = JSON.parse(lock) as { pid?: number };
  if (pid) process.kill(pid, 'SIGTERM');
}

/** The CLI as built from another revision (its sources by `git archive`, this checkout's node_modules). */
async function buildRevision(rev: string): Promise<string> {
  const dir = join(ROOT, '.bench', `rev-${process.pid}`);
  await mkdir(dir, { recursive: true });
  await execa('bash', ['-c', `git archive ${rev} src tsconfig.json tsconfig.build.json | tar -x -C ${dir}`], {
    cwd: ROOT,
  });
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  await execa('npx', ['tsc', '-p', join(dir, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')], { cwd: ROOT });
  return join(dir, 'dist');
}

let setup: ArchivingSetup | undefined;
let key: TestKey | undefined;
let work = '';
let dist = '';
let beforeDist = '';
try {
  key = await createTestKey();
  work = await mkdtemp(join(tmpdir(), 'pgwarden-bench-walget-'));
  await chmod(work, 0o755);
  const owner = isRoot
    ? [Number((await execa('id', ['-u', 'postgres'])).stdout), Number((await execa('id', ['-g', 'postgres'])).stdout)]
    : undefined;
  const own = async (path: string) => owner && (await chown(path, owner[0]!, owner[1]!));
  const privateKeyFile = join(work, 'backup.key.asc');
  await copyFile(key.privateKeyFile, privateKeyFile);
  await own(privateKeyFile);
  await chmod(privateKeyFile, 0o600);
  log('building dist/ (the CLI as installed) and a cluster archiving through wal-push');
  dist = await buildDist();
  if (beforeRev) beforeDist = await buildRevision(beforeRev);
  setup = await startArchivingCluster({ taskQueue: 'bench-walget', key: { ...key, privateKeyFile } });
  const cluster = setup.cluster;
  const base = join(work, 'base');
  await own(work);
  await asPostgres(
    join(PG_BIN, 'pg_basebackup'),
    ['-D', base, '-X', 'fetch', '-c', 'fast', '--no-sync'],
    cluster.env(),
  );

  log(`WAL: inserts until ${walMb} MB, archived`);
  await cluster.query('CREATE TABLE w (n int, pad text)');
  const [{ lsn: startLsn }] = (await cluster.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')) as [
    { lsn: string },
  ];
  for (;;) {
    await cluster.query(`INSERT INTO w SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 20000) g`);
    const [{ b }] = (await cluster.query<{ b: string }>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '${startLsn}')::text AS b`,
    )) as [{ b: string }];
    if (Number(b) >= walMb * 1024 * 1024) break;
  }
  const rows = Number((await cluster.query<{ n: string }>('SELECT count(*)::text AS n FROM w'))[0]!.n);
  await switchAndArchive(cluster, 600_000);
  await cluster.stop();
  const walDir = join(setup.repository, 'main', 'wal');
  const segments = (await readdir(walDir)).map((f) => f.replace(/\.json$/, '')).filter((f) => SEGMENT.test(f));
  log(`  ${segments.length} segments archived, ${rows} rows`);

  const plain = join(work, 'plain');
  await asPostgres('mkdir', ['-p', plain]);
  const timed = join(work, 'timed.sh');
  await writeFile(timed, TIMED);
  await chmod(timed, 0o755);
  const config = JSON.parse(await readFile(setup.configFile, 'utf8')) as Record<string, unknown>;
  const configs = {} as Record<Mode, string>;
  for (const mode of ['sync', 'async', 'before', 'script'] as const) {
    configs[mode] = join(work, `pgwarden-${mode}.json`);
    const walGet = { async: mode !== 'sync', spoolDirectory: join(work, `spool-${mode}`) };
    await writeFile(configs[mode], JSON.stringify({ ...config, walGet }));
    await chmod(configs[mode], 0o644);
  }
  const cli = (mode: Mode) =>
    `env ${PASSPHRASE_ENV}=${key!.passphrase} ${process.execPath} ${join(mode === 'before' ? beforeDist : dist, 'cli/main.js')} --config ${configs[mode]} wal-get --cluster main`;
  // The script beside a `pgwarden` that runs the built CLI (bin/pgwarden would run dist/ or the sources).
  const scriptBin = join(work, 'bin');
  await mkdir(scriptBin);
  await copyFile(join(ROOT, 'bin', 'pgwarden-wal-get'), join(scriptBin, 'pgwarden-wal-get'));
  await writeFile(
    join(scriptBin, 'pgwarden'),
    `#!/bin/sh\nexec ${process.execPath} ${join(dist, 'cli/main.js')} "$@"\n`,
  );
  for (const f of ['pgwarden', 'pgwarden-wal-get']) await chmod(join(scriptBin, f), 0o755);
  const trace = join(work, 'trace-script.txt'); // one line a call, in the calls' order: served or node
  const script = `env ${PASSPHRASE_ENV}=${key.passphrase} PGWARDEN_WAL_GET_TRACE=${trace} ${join(scriptBin, 'pgwarden-wal-get')} --config ${configs.script} --cluster main --spool ${join(work, 'spool-script', 'main')}`;

  log('synchronous wal-get of every segment into a plain directory (the cp side reads it)');
  const syncCalls: number[] = [];
  for (const s of segments) {
    const t0 = process.hrtime.bigint();
    await asPostgres('bash', ['-c', `${cli('sync')} ${s} ${join(plain, s)}`]);
    syncCalls.push(since(t0) * 1000);
  }
  log(`  p50 ${p50(syncCalls).toFixed(0)} ms a segment`);

  log('prefetched: one wal-get starts the fetcher, then the segments it spooled, one call after the other');
  const servedCalls = async (mode: 'async' | 'script', command: string): Promise<number[]> => {
    const spooled = join(work, `spool-${mode}`, 'main');
    const ahead = segments.slice(1, 9);
    await asPostgres('bash', ['-c', `${command} ${segments[0]} ${join(work, 'out')}`]);
    for (const deadline = Date.now() + 120_000; !ahead.every((s) => existsSync(join(spooled, `${s}.sha256`)));) {
      if (Date.now() > deadline) throw new Error('the fetcher did not spool the next segments in 120 s');
      await new Promise((res) => setTimeout(res, 100));
    }
    const ms: number[] = [];
    for (const s of ahead) {
      const t0 = process.hrtime.bigint();
      await asPostgres('bash', ['-c', `${command} ${s} ${join(work, 'out')}`]);
      ms.push(since(t0) * 1000);
    }
    await stopFetcher(work, mode);
    log(`  ${mode}: p50 ${p50(ms).toFixed(0)} ms a segment (${ms.map((x) => x.toFixed(0)).join(', ')})`);
    return ms;
  };
  const prefetchedCalls = await servedCalls('async', cli('async'));
  const scriptCalls = await servedCalls('script', script);
  const nodeCalls: number[] = []; // the floor: Node starting and leaving, through the same runuser and bash
  for (let i = 0; i < 8; i++) {
    const t0 = process.hrtime.bigint();
    await asPostgres('bash', ['-c', `${process.execPath} -e 0`]);
    nodeCalls.push(since(t0) * 1000);
  }
  log(`  (node -e 0 the same way: p50 ${p50(nodeCalls).toFixed(0)} ms)`);

  const sides: Record<string, string> = {
    cp: `cp ${plain}/%f %p`,
    ...(withSync ? { sync: `${cli('sync')} %f %p` } : {}),
    async: `${cli('async')} %f %p`,
    script: `${script} %f %p`,
    ...(beforeRev ? { before: `${cli('before')} %f %p` } : {}),
  };
  const results: Record<string, { seconds: number[]; callMs: number[]; servedMs?: number[] }> = {};
  for (let round = 0; round < runs; round++) {
    for (const [side, command] of Object.entries(sides)) {
      const r = (results[side] ??= { seconds: [], callMs: [] });
      const data = join(work, `run-${side}`);
      const calls = join(work, `calls-${side}.txt`);
      await rm(calls, { force: true });
      await rm(trace, { force: true });
      await asPostgres('cp', ['-a', base, data]);
      const port = await freePort();
      await asPostgres('bash', [
        '-c',
        `printf "%s\\n" "port = ${port}" "unix_socket_directories = '${work}'" "archive_mode = off" "restore_command = '${timed} ${calls} ${command}'" >> ${data}/postgresql.auto.conf && touch ${data}/recovery.signal`,
      ]);
      const t0 = process.hrtime.bigint();
      const serverLog = join(work, `${side}.log`);
      await asPostgres(join(PG_BIN, 'pg_ctl'), ['-D', data, '-l', serverLog, 'start']).catch(async (err: unknown) => {
        throw new Error(`${side}: the server did not start:\n${await readFile(serverLog, 'utf8')}`, { cause: err });
      });
      for (;;) {
        const client = new pg.Client({
          host: '127.0.0.1',
          port,
          user: cluster.user,
          password: cluster.password,
          database: 'postgres',
        });
        const done = await client
          .connect()
          .then(async () => !(await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r)
          .catch(() => false)
          .finally(() => client.end().catch(() => undefined));
        if (done) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      r.seconds.push(since(t0));
      await asPostgres(join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      for (const line of (await readFile(calls, 'utf8')).trim().split('\n')) {
        const [rc, ms, name] = line.split(' ');
        if (rc === '0' && SEGMENT.test(name ?? '')) r.callMs.push(Number(ms));
      }
      if (side === 'script') {
        // The calls the script served itself (no Node), by the trace's line for each call.
        const how = (await readFile(trace, 'utf8')).trim().split('\n');
        const timedCalls = (await readFile(calls, 'utf8')).trim().split('\n');
        timedCalls.forEach((line, i) => {
          if (how[i]?.startsWith('served ')) (r.servedMs ??= []).push(Number(line.split(' ')[1]));
        });
      }
      if (side !== 'cp') await stopFetcher(work, side as Mode);
      await rm(data, { recursive: true, force: true });
      const last = (await readFile(calls, 'utf8')).trim().split('\n');
      log(`  round ${round + 1} ${side}: ${r.seconds.at(-1)!.toFixed(1)} s; calls (exit ms file): ${last.join(', ')}`);
    }
  }
  const summary: Record<string, number> = {
    walMb,
    segments: segments.length,
    walGetSyncMsP50: Math.round(p50(syncCalls)),
    walGetPrefetchedMsP50: Math.round(p50(prefetchedCalls)),
    scriptServedMsP50: Math.round(p50(scriptCalls)),
    scriptServedCalls: results.script?.servedMs?.length ?? 0,
    scriptServedCallMsP50: Math.round(p50(results.script?.servedMs ?? [])),
    nodeStartMsP50: Math.round(p50(nodeCalls)),
    ...Object.fromEntries(
      Object.entries(results).flatMap(([side, r]) => [
        [`${side}CatchUpSeconds`, Number(p50(r.seconds).toFixed(2))],
        [`${side}CallMsP50`, Math.round(p50(r.callMs))],
      ]),
    ),
    asyncVsCp: Number((p50(results.async!.seconds) / p50(results.cp!.seconds)).toFixed(2)),
    scriptVsCp: Number((p50(results.script!.seconds) / p50(results.cp!.seconds)).toFixed(2)),
    ...(results.before
      ? { beforeVsCp: Number((p50(results.before.seconds) / p50(results.cp!.seconds)).toFixed(2)) }
      : {}),
  };
  log(
    `catch-up (median of ${runs}): cp ${summary.cpCatchUpSeconds} s, ${withSync ? `wal-get ${summary.syncCatchUpSeconds} s, ` : ''}prefetching wal-get ${summary.asyncCatchUpSeconds} s (${summary.asyncVsCp}× cp), bin/pgwarden-wal-get ${summary.scriptCatchUpSeconds} s (${summary.scriptVsCp}× cp)` +
      (beforeRev ? `; as built from ${beforeRev}: ${summary.beforeCatchUpSeconds} s (${summary.beforeVsCp}× cp)` : ''),
  );
  log(
    `restore_command p50 per segment: cp ${summary.cpCallMsP50} ms, ${withSync ? `wal-get ${summary.syncCallMsP50} ms, ` : ''}prefetching wal-get ${summary.asyncCallMsP50} ms, bin/pgwarden-wal-get ${summary.scriptCallMsP50} ms (the ${summary.scriptServedCalls} calls it served without Node: ${summary.scriptServedCallMsP50} ms)` +
      (beforeRev ? `, as built from ${beforeRev} ${summary.beforeCallMsP50} ms` : ''),
  );
  log(JSON.stringify(summary));
} finally {
  await setup?.remove().catch(() => undefined);
  await key?.remove();
  if (work) await rm(work, { recursive: true, force: true });
  if (dist) await rm(dist, { recursive: true, force: true });
  if (beforeDist) await rm(dirname(beforeDist), { recursive: true, force: true });
}

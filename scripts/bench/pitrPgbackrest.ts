// pgBackRest as a peer of pgwarden and of the manual recovery in npm run bench:pitr: Debian's
// `pgbackrest` package (scripts/setup.sh installs it) on the same cluster, the same base backup
// moment and the same WAL.
//   archive   archive_command is a wrapper that hands each segment to pgwarden wal-push and to
//             `pgbackrest archive-push` at once and succeeds only when both do (see the script's
//             comment); archive-async=y, pgBackRest's own asynchronous pusher, as walPush.async
//   repo      <work>/pgbackrest/repo, the postgres user's; compress-type=zst,
//             repo1-cipher-type=aes-256-cbc with a generated passphrase (none with --plain, as
//             pgwarden's side), process-max=2 (backup, restore and the asynchronous archive-get),
//             start-fast=y (as pg_basebackup --checkpoint=fast)
//   backup    `pgbackrest backup --type=full`, taken right after pgwarden's base backup; timed, and
//             the bytes its backup directory holds in the repository
//   recovery  `pgbackrest restore --type=default` (to the end of the archive: the others' target,
//             {latest: true}) into a scratch directory, archive-get async with a fresh spool per run;
//             timed from the restore's start, through the server's start, until promoted
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { freePort } from '../../test/helpers/ports.js';
import {
  asPostgres,
  checkState,
  duBytes,
  since,
  startUntilPromoted,
  removeScratch,
  stopServer,
  type StateAtT,
} from './pitrServer.js';

const STANZA = 'bench';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface PgbackrestRecovery {
  seconds: number;
  restoreSeconds: number;
  reachedLsn: string;
  redoDone: string;
}

/**
 * The script setUpPgbackrest writes: archive_command = '<it> %p %f' sends each segment to both
 * archives. Its name contains "pgbackrest": pgBackRest's backup refuses an archive_command that
 * does not (a check that archiving goes through it at all).
 */
export const archiveBothScript = (work: string) => join(work, 'archive-pgwarden-and-pgbackrest.sh');

export interface Pgbackrest {
  createStanza(): Promise<void>;
  /** From now on the archive_command script feeds pgwarden's archive only (pgBackRest's runs are over). */
  stopArchiving(): Promise<void>;
  fullBackup(): Promise<{ seconds: number; bytes: number; label: string }>;
  archiveBytes(): Promise<number>;
  /** Restores into <work>/pgbackrest-<i>, starts it until promoted, checks the state at T, removes it. */
  recover(i: number, password: string, state: StateAtT): Promise<PgbackrestRecovery>;
}

/**
 * Writes pgBackRest's config (0600, the postgres user's: it holds the cipher passphrase) and the
 * archive_command wrapper. `push` is pgwarden's archive_command without its %p %f. Call it before
 * the cluster starts; createStanza once it runs.
 */
export async function setUpPgbackrest(o: {
  work: string;
  cluster: { port: number; dataDir: string };
  encrypt: boolean;
  push: string;
  owner?: { uid: number; gid: number };
}): Promise<Pgbackrest> {
  const home = join(o.work, 'pgbackrest');
  const repo = join(home, 'repo');
  const configFile = join(home, 'pgbackrest.conf');
  for (const d of [home, repo, join(home, 'spool'), join(home, 'lock'), join(home, 'log')]) {
    await mkdir(d, { mode: 0o750 });
    if (o.owner) await chown(d, o.owner.uid, o.owner.gid);
  }
  const config = [
    '[global]',
    `repo1-path=${repo}`,
    'repo1-retention-full=9999999',
    ...(o.encrypt ? ['repo1-cipher-type=aes-256-cbc', `repo1-cipher-pass=${randomBytes(32).toString('hex')}`] : []),
    'compress-type=zst',
    'archive-async=y',
    `spool-path=${join(home, 'spool')}`,
    'process-max=2',
    'start-fast=y',
    'archive-timeout=600',
    `lock-path=${join(home, 'lock')}`,
    `log-path=${join(home, 'log')}`,
    'log-level-console=warn',
    '',
    `[${STANZA}]`,
    `pg1-path=${o.cluster.dataDir}`,
    `pg1-port=${o.cluster.port}`,
    `pg1-socket-path=${dirname(o.cluster.dataDir)}`,
    'pg1-user=postgres',
    '',
  ].join('\n');
  await writeFile(configFile, config, { mode: 0o600 });
  if (o.owner) await chown(configFile, o.owner.uid, o.owner.gid);
  const pgbackrest = ['pgbackrest', `--config=${configFile}`, `--stanza=${STANZA}`].join(' ');
  const wrapper = archiveBothScript(o.work);
  const pgwardenOnly = join(o.work, 'archive-pgwarden-only');
  await writeFile(
    wrapper,
    `#!/bin/sh
# archive_command of the benchmark's cluster: each segment to pgwarden's archive and to pgBackRest's.
# Both run at once (each only hands the segment to its asynchronous pusher, so neither waits for the
# other's), and the segment counts as archived only when both succeeded: PostgreSQL keeps it and
# retries otherwise. A retry is safe on both sides: each accepts a segment it already holds with the
# same content, and refuses one with different content. Once ${pgwardenOnly} exists (the
# benchmark's pgBackRest runs are over), pgwarden's archive only: pgBackRest's push then is not on
# the path of pgwarden's in-place recoveries, which wait for the archive before the server stops.
[ -e ${pgwardenOnly} ] && exec ${o.push} "$1" "$2"
${o.push} "$1" "$2" &
pgwarden=$!
${pgbackrest} archive-push "$1"
pgbackrest=$?
wait "$pgwarden"
pgwarden=$?
[ "$pgwarden" -eq 0 ] && [ "$pgbackrest" -eq 0 ]
`,
  );
  await chmod(wrapper, 0o755);
  const run = (args: string[]) => asPostgres('pgbackrest', [`--config=${configFile}`, `--stanza=${STANZA}`, ...args]);

  return {
    async createStanza() {
      await run(['stanza-create']);
    },
    async stopArchiving() {
      await writeFile(pgwardenOnly, '');
    },
    async fullBackup() {
      const started = process.hrtime.bigint();
      await run(['--type=full', 'backup']);
      const seconds = since(started);
      const info = JSON.parse((await run(['--output=json', 'info'])).stdout) as { backup: { label: string }[] }[];
      const label = info[0]!.backup.at(-1)!.label;
      return { seconds, label, bytes: await duBytes(join(repo, 'backup', STANZA, label)) };
    },
    async archiveBytes() {
      return duBytes(join(repo, 'archive'));
    },
    async recover(i, password, state) {
      const who = `pgBackRest recovery ${i + 1}`;
      const dir = join(o.work, `pgbackrest-${i}`);
      const data = join(dir, 'data');
      const spool = join(dir, 'spool'); // a fresh spool: no run finds segments a previous one fetched
      await mkdir(data, { recursive: true, mode: 0o700 });
      await chmod(data, 0o700);
      for (const d of [dir, data]) if (o.owner) await chown(d, o.owner.uid, o.owner.gid);
      const port = await freePort();
      const started = process.hrtime.bigint();
      try {
        // restore_command, written by the restore, names --pg1-path and --spool-path as given here.
        await run([`--pg1-path=${data}`, `--spool-path=${spool}`, '--archive-mode=off', '--type=default', 'restore']);
        const restoreSeconds = since(started);
        const r = await startUntilPromoted({ data, dir, port, password, started, who });
        await checkState(port, password, state, who);
        return { ...r, restoreSeconds };
      } finally {
        await stopServer(data);
        await asyncGetExited(spool);
        await removeScratch(dir);
      }
    },
  };
}

/** Waits (up to 30 s) until no asynchronous archive-get of this spool runs, so its directory can go. */
async function asyncGetExited(spool: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    let running = false;
    for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes(`--spool-path=${spool}`)) running = true;
    }
    if (!running) return;
    await sleep(200);
  }
}

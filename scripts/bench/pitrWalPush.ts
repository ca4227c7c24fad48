// npm run bench:pitr's wal-push timings, per segment, p50: a sample of up to 20 of the archived
// segments (decoded into the plain WAL directory) pushed into a scratch repository, once one after
// the other without walPush.async, and once as PostgreSQL's archiver calls archive_command with
// walPush.async (the live cluster's mode).
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { since } from './pitrServer.js';
import { median } from './worker.js';

export async function timeWalPush(o: {
  cli: string;
  env: Record<string, string | undefined>;
  plainWal: string;
  segments: string[];
  work: string;
  /** Configs of the scratch repository, without and with walPush.async (spooling into asyncSpool). */
  pushConfigFile: string;
  asyncPushConfigFile: string;
  asyncSpool: string;
  log: (line: string) => void;
}): Promise<{ walPushSyncMsP50: number; walPushMsP50: number }> {
  const { cli, plainWal, segments, work, pushConfigFile, asyncPushConfigFile, log } = o;
  const cliEnv = o.env;
  const sample = Array.from(
    { length: Math.min(20, segments.length) },
    (_, i) => segments[Math.floor((i * segments.length) / Math.min(20, segments.length))]!,
  );
  const pushMs: number[] = [];
  for (const name of sample) {
    const started = process.hrtime.bigint();
    await execa(
      process.execPath,
      [cli, '--config', pushConfigFile, 'wal-push', '--cluster', 'main', join(plainWal, name), name],
      { env: cliEnv },
    );
    pushMs.push(since(started) * 1000);
  }
  const walPushSyncMsP50 = median(pushMs, (v) => v);
  log(
    `wal-push of ${sample.length} segments into a scratch repository, one call after the other: p50 ${walPushSyncMsP50.toFixed(0)} ms (min ${Math.min(...pushMs).toFixed(0)}, max ${Math.max(...pushMs).toFixed(0)})`,
  );
  await rm(join(work, 'push-scratch-repo'), { recursive: true, force: true });

  // As PostgreSQL's archiver runs it with walPush.async: a data directory whose pg_wal holds the
  // sample segments marked ready; archive_command for each in turn, from the data directory,
  // each marked done when it succeeds. The first call starts the pusher.
  const fakeData = join(work, 'push-archiver-data');
  await mkdir(join(fakeData, 'pg_wal', 'archive_status'), { recursive: true });
  const fakeNames = sample.map((_, i) => `00000001000000AA000000${i.toString(16).toUpperCase().padStart(2, '0')}`);
  for (const [i, name] of sample.entries()) {
    await copyFile(join(plainWal, name), join(fakeData, 'pg_wal', fakeNames[i]!));
    await writeFile(join(fakeData, 'pg_wal', 'archive_status', `${fakeNames[i]}.ready`), '');
  }
  const asyncMs: number[] = [];
  const archiverStarted = process.hrtime.bigint();
  for (const name of fakeNames) {
    const started = process.hrtime.bigint();
    await execa(
      process.execPath,
      [cli, '--config', asyncPushConfigFile, 'wal-push', '--cluster', 'main', `pg_wal/${name}`, name],
      { env: cliEnv, cwd: fakeData },
    );
    asyncMs.push(since(started) * 1000);
    await rename(
      join(fakeData, 'pg_wal', 'archive_status', `${name}.ready`),
      join(fakeData, 'pg_wal', 'archive_status', `${name}.done`),
    );
  }
  const archiverSeconds = since(archiverStarted);
  const walPushMsP50 = median(asyncMs, (v) => v);
  log(
    `wal-push with walPush.async, as the archiver calls it for ${fakeNames.length} ready segments: p50 ${walPushMsP50.toFixed(0)} ms ` +
      `(min ${Math.min(...asyncMs).toFixed(0)}, max ${Math.max(...asyncMs).toFixed(0)}; all ${archiverSeconds.toFixed(1)} s)`,
  );
  const pusherPid = (
    JSON.parse(await readFile(join(o.asyncSpool, 'main', 'pusher.pid'), 'utf8').catch(() => '{}')) as { pid?: number }
  ).pid;
  if (pusherPid) process.kill(pusherPid, 'SIGTERM');
  await rm(fakeData, { recursive: true, force: true });
  await rm(join(work, 'push-scratch-repo'), { recursive: true, force: true });
  return { walPushSyncMsP50, walPushMsP50 };
}

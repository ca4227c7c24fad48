#!/usr/bin/env node
// The `pgwarden` command. `wal-push` (the archive_command, started once per WAL segment) and a
// `wal-get` (restore_command) that finds its segment prefetched take paths that load Node built-ins
// only; the prefetcher wal-get starts loads the config and its own modules; every other command,
// and any call the fast paths do not take, loads the full program.
import { fastWalPush } from '../archive/fastPath.js';
import { fastWalGet } from '../archive/getFast.js';

const args = process.argv.slice(2);
if (args.length === 4 && args[0] === '--config' && args[2] === 'wal-get-fetcher') await fetcher(args[1]!, args[3]!);
else if (!(await fastWalPush(args)) && !(await fastWalGet(args))) await import('./program.js');

/**
 * The prefetcher, as wal-get starts it (src/archive/getSpool.ts): recovery waits for its first
 * segment, so it skips the program's commands (`pgwarden wal-get-fetcher` there does the same).
 */
async function fetcher(config: string, job: string): Promise<void> {
  const [{ loadConfig }, { runFetcher }] = await Promise.all([
    import('../config/index.js'),
    import('../storage/walPrefetch.js'),
  ]);
  try {
    await runFetcher(loadConfig(config), JSON.parse(job) as Parameters<typeof runFetcher>[1], process.env);
  } catch (err) {
    console.error(`pgwarden wal-get-fetcher: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}

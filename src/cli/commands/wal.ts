// `pgwarden wal-push %p %f` (archive_command) and `pgwarden wal-get %f %p` (restore_command): short
// processes PostgreSQL runs once per WAL file, so they load only what they need (no Temporal).
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';
import type { FetcherJob } from '../../archive/getSpool.js';

/** Exit codes PostgreSQL understands: 1 = "not there / try again"; above 125 stops recovery. */
export const EXIT_NOT_FOUND = 1;
export const EXIT_FATAL = 126;

export function registerWalCommands(program: Command, config: () => Config): void {
  program
    .command('wal-push <path> <name>')
    .description(
      'archive one WAL file (archive_command): compress, encrypt, store atomically; never overwrite different content',
    )
    .requiredOption('--cluster <name>', 'cluster name from the config')
    .addHelpText(
      'after',
      "\nIn postgresql.conf (see `pgwarden cluster archiving`):\n  archive_command = 'pgwarden --config /etc/pgwarden/pgwarden.config.json wal-push --cluster main %p %f'",
    )
    .action(async (path: string, name: string, opts: { cluster: string }) => {
      // Reached when the fast path (src/archive/fastPath.ts) declined: the config is validated in full here.
      const [{ archiveWalFile }, { walPushSettingsFor }] = await Promise.all([
        import('../../archive/pushAsync.js'),
        import('../../storage/walArchive.js'),
      ]);
      const result = await archiveWalFile(walPushSettingsFor(config(), opts.cluster), path, name);
      if (result.outcome === 'identical') console.error(`pgwarden: ${name} was archived already with the same content`);
    });

  program
    .command('wal-get <name> <path>')
    .description('fetch one WAL file from the archive (restore_command); exit 1 if the archive lacks it')
    .requiredOption('--cluster <name>', 'cluster name from the config')
    .addHelpText(
      'after',
      "\nIn postgresql.conf:\n  restore_command = 'pgwarden --config /etc/pgwarden/pgwarden.config.json wal-get --cluster main %f %p'",
    )
    .action(async (name: string, path: string, opts: { cluster: string }) => {
      const { getWal } = await import('../../storage/walArchive.js');
      let found: boolean;
      try {
        found = await getWal(config(), opts.cluster, name, path, process.env);
      } catch (err) {
        // The archive has the file but cannot deliver it (corrupt, wrong key): recovery must stop
        // here rather than end early and promote a cluster that silently lacks this WAL.
        console.error(`pgwarden: wal-get ${name}: ${(err as Error).message}`);
        process.exit(EXIT_FATAL);
      }
      if (!found) process.exit(EXIT_NOT_FOUND);
    });

  // The prefetcher of walGet.async, started by wal-get itself (src/archive/getSpool.ts).
  program
    .command('wal-get-fetcher <job>', { hidden: true })
    .description('decode WAL ahead of recovery into the spool (started by wal-get)')
    .action(async (job: string) => {
      const { runFetcher } = await import('../../storage/walPrefetch.js');
      await runFetcher(config(), JSON.parse(job) as FetcherJob, process.env);
    });
}

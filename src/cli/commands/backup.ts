// `pgwarden backup`: start a fullBackup (logical, pg_dump) of one database or of all, optionally verified.
import { Option, type Command } from 'commander';
import type { Config } from '../../config/index.js';
import { formatBackupId, fullBackupWorkflowId } from '../../lib/ids.js';
import type { FullBackupInput, FullBackupResult } from '../../workflows/fullBackup.js';
import { requireBackupIdOption, requireCluster } from '../errors.js';
import { formatDuration } from '../format.js';
import { formatBytes } from '../../lib/diskSpace.js';
import { connectClient, startRun, waitWithProgress } from '../lazyClient.js';
import { verifiedLines } from './verify.js';

export function registerBackupCommand(program: Command, config: () => Config): void {
  program
    .command('backup')
    .description('start a fullBackup (logical, pg_dump) of one database, or of all with --database "*"')
    .requiredOption('--cluster <name>', 'cluster name from the config')
    .requiredOption('--database <name>', 'database name, or "*" for every database')
    .option('--backup-id <id>', 'backup id (default: the start time, e.g. 20261122T020000Z)')
    .option('--verify', 'then verify it by restoring it into a temporary database (a child verifyBackup)')
    .option('--wait', 'wait for the result, showing progress')
    .addOption(new Option('--json', 'print the result as JSON'))
    .addHelpText(
      'after',
      '\nExamples:\n  pgwarden backup --cluster main --database app --wait\n  pgwarden backup --cluster main --database app --verify --wait\n  pgwarden backup --cluster main --database "*"',
    )
    .action(
      async (opts: {
        cluster: string;
        database: string;
        backupId?: string;
        verify?: boolean;
        wait?: boolean;
        json?: boolean;
      }) => {
        const cfg = config();
        requireCluster(cfg, opts.cluster);
        requireBackupIdOption(opts.backupId);
        const backupId = opts.backupId ?? formatBackupId(new Date());
        const input: FullBackupInput = {
          cluster: opts.cluster,
          database: opts.database,
          backupId,
          ...(opts.verify ? { verify: true } : {}),
        };
        const client = await connectClient(cfg);
        const workflowId = fullBackupWorkflowId(opts.cluster, opts.database === '*' ? 'all' : opts.database, backupId);
        const handle = await startRun(
          client,
          cfg,
          { cluster: opts.cluster, database: opts.database, kind: 'full' },
          { workflowId, args: [input] },
        );
        if (!opts.json) console.log(`started fullBackup ${workflowId}`);
        if (!opts.wait) {
          if (opts.json) console.log(JSON.stringify({ workflowId }));
          return;
        }
        const result = await waitWithProgress<FullBackupResult>(handle, !!opts.json);
        if (opts.json) return void console.log(JSON.stringify(result));
        for (const b of result.backups) {
          console.log(
            `${b.cluster}/${b.database} ${b.backupId}: ${formatBytes(b.bytes)} stored, ` +
              `${b.tables} tables, ${b.rows} rows, ${formatDuration(b.seconds)}${b.reused ? ' (already committed)' : ''}\n  ${b.path}`,
          );
        }
        for (const v of result.verifications ?? []) for (const line of verifiedLines(v)) console.log(line);
      },
    );
}

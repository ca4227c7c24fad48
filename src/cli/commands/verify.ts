// `pgwarden verify`: start a verifyBackup, restoring a logical backup into a temporary database and
// comparing it with its manifest.
import { Option, type Command } from 'commander';
import type { Config } from '../../config/index.js';
import { formatBackupId, verifyBackupWorkflowId } from '../../lib/ids.js';
import type { VerifyBackupInput, VerifyBackupResult } from '../../workflows/verifyBackup.js';
import { requireBackupIdOption, requireCluster, usage } from '../errors.js';
import { formatDuration } from '../format.js';
import { connectClient, startRun, waitWithProgress } from '../lazyClient.js';

export function registerVerifyCommand(program: Command, config: () => Config): void {
  program
    .command('verify')
    .description(
      'start a verifyBackup: restore a logical backup into a temporary database and compare it with its manifest (of one database, or of every database of the newest "*" backup)',
    )
    .requiredOption('--cluster <name>', 'cluster name from the config')
    .requiredOption('--database <name>', 'database name, or "*" for every database of the newest "*" backup')
    .option('--backup-id <id>', 'backup to verify (default: the newest not verified yet, else the newest)')
    .option('--wait', 'wait for the result, showing progress')
    .addOption(new Option('--json', 'print the result as JSON'))
    .addHelpText(
      'after',
      '\nExamples:\n  pgwarden verify --cluster main --database app --wait\n  pgwarden verify --cluster main --database app --backup-id 20261122T020000Z --wait\n  pgwarden verify --cluster main --database "*"',
    )
    .action(async (opts: { cluster: string; database: string; backupId?: string; wait?: boolean; json?: boolean }) => {
      const cfg = config();
      requireCluster(cfg, opts.cluster);
      requireBackupIdOption(opts.backupId);
      if (opts.backupId && opts.database === '*')
        throw usage('--backup-id names one database\'s backup: not with --database "*"');
      const input: VerifyBackupInput = {
        cluster: opts.cluster,
        database: opts.database,
        ...(opts.backupId ? { backupId: opts.backupId } : {}),
      };
      const client = await connectClient(cfg);
      // Without --backup-id the run is named by its start time (the workflow picks the backup).
      const workflowId = verifyBackupWorkflowId(
        opts.cluster,
        opts.database === '*' ? 'all' : opts.database,
        opts.backupId ?? formatBackupId(new Date()),
      );
      const handle = await startRun(
        client,
        cfg,
        { cluster: opts.cluster, database: opts.database, kind: 'verify' },
        { workflowId, args: [input] },
      );
      if (!opts.json) console.log(`started verifyBackup ${workflowId}`);
      if (!opts.wait) return void (opts.json && console.log(JSON.stringify({ workflowId })));
      const result = await waitWithProgress<VerifyBackupResult>(handle, !!opts.json);
      if (opts.json) return void console.log(JSON.stringify(result));
      for (const line of verifiedLines(result)) console.log(line);
    });
}

/** A verification's lines: one per database (the "*" run's children), restore time, tables, rows. */
export function verifiedLines(v: VerifyBackupResult): string[] {
  if (v.databases?.length) return v.databases.flatMap(verifiedLines);
  return [
    `verified ${v.cluster}/${v.database} ${v.backupId}: restored in ${formatDuration(v.restoreSeconds)}, ${v.tables} tables, ${v.rows} rows as in its manifest`,
  ];
}

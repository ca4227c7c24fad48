// `pgwarden restore`: start a restoreDatabase, a logical backup restored over a database after
// approval (or some of its tables into a copy, without one).
import { Option, type Command } from 'commander';
import type { Config } from '../../config/index.js';
import { formatBackupId, restoreDatabaseWorkflowId } from '../../lib/ids.js';
import type { RestoreDatabaseInput, RestoreDatabaseResult } from '../../workflows/restoreDatabase.js';
import { requireBackupIdOption, requireCluster } from '../errors.js';
import { connectClient, startRun, waitWithProgress } from '../lazyClient.js';
import { reportPlan } from '../reportPlan.js';
import { outcomeOf } from '../runReport.js';

export function registerRestoreCommand(program: Command, config: () => Config): void {
  program
    .command('restore')
    .description(
      'start a restoreDatabase: restore a logical backup over a database, after approval (the live one is kept renamed)',
    )
    .requiredOption('--cluster <name>', 'cluster name from the config')
    .requiredOption('--database <name>', 'database to restore')
    .option('--backup-id <id>', 'backup to restore (default: the newest)')
    .option('--approval-timeout <duration>', 'how long to wait for approve/reject', '24 hours')
    .option('--reindex', 'REINDEX DATABASE after the restore')
    .option(
      '--tables <names>',
      'comma-separated: restore only these tables into <db>_restore_<id>_<run> and leave them there (no approval needed)',
    )
    .option('--wait', 'wait for the result, showing progress')
    .addOption(new Option('--json', 'print the result as JSON'))
    .addHelpText(
      'after',
      '\nExamples:\n  pgwarden restore --cluster main --database app --backup-id 20261122T020000Z\n  pgwarden status pgwarden/main/app/restore/20261122T020000Z\n  pgwarden approve pgwarden/main/app/restore/20261122T020000Z --approver alice --reason "INC-42"',
    )
    .action(
      async (opts: {
        cluster: string;
        database: string;
        backupId?: string;
        approvalTimeout: string;
        reindex?: boolean;
        tables?: string;
        wait?: boolean;
        json?: boolean;
      }) => {
        const cfg = config();
        requireCluster(cfg, opts.cluster);
        requireBackupIdOption(opts.backupId);
        const client = await connectClient(cfg);
        const workflowId = restoreDatabaseWorkflowId(
          opts.cluster,
          opts.database,
          opts.backupId ?? formatBackupId(new Date()),
        );
        const tables = opts.tables
          ?.split(',')
          .map((t) => t.trim())
          .filter(Boolean);
        const input: RestoreDatabaseInput = {
          cluster: opts.cluster,
          database: opts.database,
          backupId: opts.backupId,
          approvalTimeout: opts.approvalTimeout,
          reindex: opts.reindex,
          tables,
        };
        const handle = await startRun(
          client,
          cfg,
          { cluster: opts.cluster, database: opts.database, kind: 'restore' },
          { workflowId, args: [input] },
        );
        if (!opts.json)
          console.log(
            `started restoreDatabase ${workflowId}${tables?.length ? ` (tables ${tables.join(', ')}; no approval needed)` : ''}`,
          );
        if (!opts.wait) return reportPlan(handle, !!opts.json, !tables?.length);
        const result = await waitWithProgress<RestoreDatabaseResult>(handle, !!opts.json);
        process.exitCode = outcomeOf('COMPLETED', result)!.exitCode; // 3 when rejected or nobody approved
        if (opts.json) return void console.log(JSON.stringify(result));
        console.log(
          result.outcome === 'restored'
            ? `restored ${opts.cluster}/${opts.database} from ${result.backupId}; ${result.previousDatabase ? `the previous database is kept as ${result.previousDatabase}` : 'there was no live database to keep'}`
            : result.outcome === 'tables-restored'
              ? `restored ${tables!.join(', ')} from ${result.backupId} into ${result.tablesDatabase}; copy back what you need`
              : `not restored: ${result.outcome}${result.decision ? ` by ${result.decision.approver} (${result.decision.reason})` : ''}`,
        );
      },
    );
}

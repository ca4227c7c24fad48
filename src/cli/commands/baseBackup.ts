// `pgwarden base-backup`: start a baseBackup (physical, pg_basebackup), the starting point of
// point-in-time recovery.
import { Option, type Command } from 'commander';
import type { Config } from '../../config/index.js';
import { baseBackupWorkflowId, formatBackupId } from '../../lib/ids.js';
import type { BaseBackupWorkflowInput, BaseBackupWorkflowResult } from '../../workflows/baseBackup.js';
import { requireBackupIdOption, requireCluster } from '../errors.js';
import { formatDuration } from '../format.js';
import { formatBytes } from '../../lib/diskSpace.js';
import { connectClient, startRun, waitWithProgress } from '../lazyClient.js';

export function registerBaseBackupCommand(program: Command, config: () => Config): void {
  program
    .command('base-backup')
    .description(
      'start a baseBackup (physical, pg_basebackup) of a cluster: the starting point of point-in-time recovery',
    )
    .requiredOption('--cluster <name>', 'cluster name from the config')
    .option('--backup-id <id>', 'backup id (default: the start time, e.g. 20261122T030000Z)')
    .option('--wait', 'wait for the result, showing progress')
    .addOption(new Option('--json', 'print the result as JSON'))
    .addHelpText('after', '\nExample:\n  pgwarden base-backup --cluster main --wait')
    .action(async (opts: { cluster: string; backupId?: string; wait?: boolean; json?: boolean }) => {
      const cfg = config();
      requireCluster(cfg, opts.cluster);
      requireBackupIdOption(opts.backupId);
      const backupId = opts.backupId ?? formatBackupId(new Date());
      const input: BaseBackupWorkflowInput = { cluster: opts.cluster, backupId };
      const client = await connectClient(cfg);
      const workflowId = baseBackupWorkflowId(opts.cluster, backupId);
      const handle = await startRun(
        client,
        cfg,
        { cluster: opts.cluster, kind: 'base' },
        { workflowId, args: [input] },
      );
      if (!opts.json) console.log(`started baseBackup ${workflowId}`);
      if (!opts.wait) return void (opts.json && console.log(JSON.stringify({ workflowId })));
      const r = await waitWithProgress<BaseBackupWorkflowResult>(handle, !!opts.json);
      if (opts.json) return void console.log(JSON.stringify(r));
      console.log(
        `${r.cluster} ${r.backupId}: ${formatBytes(r.bytes)} stored, timeline ${r.timeline}, WAL ${r.startLsn} to ${r.stopLsn}, ${formatDuration(r.seconds)}${r.reused ? ' (already committed)' : ''}\n  ${r.path}`,
      );
    });
}

// `pgwarden standby create`: start a createStandby: a streaming standby built on its host from the
// repository's newest base backup (approval first when its data directory is not empty).
import { Option, type Command } from 'commander';
import type { Config } from '../../config/index.js';
import { createStandbyWorkflowId, formatBackupId } from '../../lib/ids.js';
import type { CreateStandbyInput, CreateStandbyResult } from '../../workflows/createStandby.js';
import { requireBackupIdOption, requireCluster, UserError } from '../errors.js';
import { formatDuration } from '../format.js';
import { connectClient, startRun, waitWithProgress } from '../lazyClient.js';
import { reportPlan } from '../reportPlan.js';
import { outcomeOf } from '../runReport.js';
import { registerStandbyPromote } from './standbyPromote.js';

export function registerStandbyCommands(program: Command, config: () => Config): void {
  const standby = program.command('standby').description('streaming standbys of a cluster');
  standby
    .command('create')
    .description(
      "start a createStandby: lay the newest base backup on the standby's host, configure streaming and restore_command (pgwarden wal-get), start it and wait until it streams; approval first when its data directory is not empty (it is kept aside)",
    )
    .requiredOption('--cluster <name>', 'cluster name from the config')
    .requiredOption('--standby <name>', 'standby name from clusters.<cluster>.standbys (needs its dataDirectory)')
    .option('--backup-id <id>', 'base backup to lay down (default: the newest)')
    .option(
      '--approval-timeout <duration>',
      'how long to wait for approve/reject when the directory is not empty',
      '24 hours',
    )
    .option('--stream-timeout <duration>', 'how long the standby may take to stream', '1 hour')
    .option('--wait', 'wait for the result, showing progress')
    .addOption(new Option('--json', 'print the result as JSON'))
    .addHelpText(
      'after',
      '\nExamples:\n  pgwarden standby create --cluster main --standby replica1 --wait\n' +
        '  pgwarden approve pgwarden/main/standby/replica1/20261122T121500Z --approver alice --reason "rebuild replica1"',
    )
    .action(
      async (opts: {
        cluster: string;
        standby: string;
        backupId?: string;
        approvalTimeout: string;
        streamTimeout: string;
        wait?: boolean;
        json?: boolean;
      }) => {
        const cfg = config();
        requireCluster(cfg, opts.cluster);
        requireBackupIdOption(opts.backupId);
        const names = (cfg.clusters[opts.cluster]!.standbys ?? []).map((s) => s.name);
        if (!names.includes(opts.standby))
          throw new UserError(
            `cluster "${opts.cluster}" has no standby "${opts.standby}" (configured: ${names.join(', ') || 'none'})`,
          );
        const input: CreateStandbyInput = {
          cluster: opts.cluster,
          standby: opts.standby,
          ...(opts.backupId ? { backupId: opts.backupId } : {}),
          approvalTimeout: opts.approvalTimeout,
          streamTimeout: opts.streamTimeout,
        };
        const client = await connectClient(cfg);
        const workflowId = createStandbyWorkflowId(opts.cluster, opts.standby, formatBackupId(new Date()));
        const handle = await startRun(
          client,
          cfg,
          { cluster: opts.cluster, kind: 'standby' },
          { workflowId, args: [input] },
        );
        if (!opts.json) console.log(`started createStandby ${workflowId}`);
        if (!opts.wait) return reportPlan(handle, !!opts.json, false);
        const r = await waitWithProgress<CreateStandbyResult>(handle, !!opts.json);
        process.exitCode = outcomeOf('COMPLETED', r)!.exitCode; // 3 when rejected or nobody approved
        if (opts.json) return void console.log(JSON.stringify(r));
        if (r.outcome !== 'streaming') return void console.log(`not built: ${outcomeOf('COMPLETED', r)!.text}`);
        console.log(
          `standby ${r.standby} of ${r.cluster} streams from base backup ${r.backupId} in ${r.dataDirectory}: ${r.streaming?.detail ?? ''}`,
        );
        console.log(`  steps: ${r.steps.map((s) => `${s.step} ${formatDuration(s.seconds)}`).join(', ')}`);
        if (r.previousDataDirectory) console.log(`  the previous data directory is kept at ${r.previousDataDirectory}`);
      },
    );
  registerStandbyPromote(standby, config);
}

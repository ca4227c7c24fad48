// `pgwarden standby promote`: start a promoteStandby: the DR runbook's "promote the standby", after
// checking it is caught up to the archive, and only once approved. One per cluster at a time.
import { Option, type Command } from 'commander';
import type { Config } from '../../config/index.js';
import { promoteStandbyWorkflowId } from '../../lib/ids.js';
import type { PromoteStandbyInput, PromoteStandbyResult } from '../../workflows/promoteStandby.js';
import { requireCluster, UserError } from '../errors.js';
import { formatDuration } from '../format.js';
import { connectClient, startRun, waitWithProgress } from '../lazyClient.js';
import { reportPlan } from '../reportPlan.js';
import { outcomeOf } from '../runReport.js';

export function registerStandbyPromote(standby: Command, config: () => Config): void {
  standby
    .command('promote')
    .description(
      'start a promoteStandby (pgwarden/<cluster>/promote: one per cluster at a time): check the standby is in recovery and has replayed through the end of the WAL archive (waiting, bounded), say whether the primary is still up (split brain), wait for approval, then pg_promote() it and wait until it accepts writes',
    )
    .requiredOption('--cluster <name>', 'cluster name from the config')
    .requiredOption('--standby <name>', 'standby name from clusters.<cluster>.standbys')
    .option(
      '--allow-behind-archive',
      'ask for approval even if the standby stays behind the archive (what is lost is in the approval)',
    )
    .option(
      '--catch-up-timeout <duration>',
      'how long plan waits for the standby to replay through the archive',
      '5 minutes',
    )
    .option('--approval-timeout <duration>', 'how long to wait for approve/reject', '24 hours')
    .option('--wait', 'wait for the result, showing progress')
    .addOption(new Option('--json', 'print the result as JSON'))
    .addHelpText(
      'after',
      '\nExamples:\n  pgwarden standby promote --cluster main --standby replica1 --wait\n' +
        '  pgwarden approve pgwarden/main/promote --approver alice --reason "INC-42: db1 lost"',
    )
    .action(
      async (opts: {
        cluster: string;
        standby: string;
        allowBehindArchive?: boolean;
        catchUpTimeout: string;
        approvalTimeout: string;
        wait?: boolean;
        json?: boolean;
      }) => {
        const cfg = config();
        requireCluster(cfg, opts.cluster);
        const names = (cfg.clusters[opts.cluster]!.standbys ?? []).map((s) => s.name);
        if (!names.includes(opts.standby))
          throw new UserError(
            `cluster "${opts.cluster}" has no standby "${opts.standby}" (configured: ${names.join(', ') || 'none'})`,
          );
        const input: PromoteStandbyInput = {
          cluster: opts.cluster,
          standby: opts.standby,
          ...(opts.allowBehindArchive ? { allowBehindArchive: true } : {}),
          catchUpTimeout: opts.catchUpTimeout,
          approvalTimeout: opts.approvalTimeout,
        };
        const client = await connectClient(cfg);
        const workflowId = promoteStandbyWorkflowId(opts.cluster);
        const handle = await startRun(
          client,
          cfg,
          { cluster: opts.cluster, kind: 'promote' },
          { workflowId, args: [input] },
        ).catch((err: Error) => {
          if (err.name !== 'WorkflowExecutionAlreadyStartedError') throw err;
          throw new UserError(
            `a promotion of cluster "${opts.cluster}" is running already (${workflowId}): one at a time. See it with pgwarden status ${workflowId}; approve, reject or wait for it to end before starting another`,
          );
        });
        if (!opts.json) console.log(`started promoteStandby ${workflowId}`);
        if (!opts.wait) return reportPlan(handle, !!opts.json, true);
        const r = await waitWithProgress<PromoteStandbyResult>(handle, !!opts.json);
        process.exitCode = outcomeOf('COMPLETED', r)!.exitCode; // 3 when rejected or nobody approved
        if (opts.json) return void console.log(JSON.stringify(r));
        if (r.outcome !== 'promoted') return void console.log(`not promoted: ${outcomeOf('COMPLETED', r)!.text}`);
        console.log(outcomeOf('COMPLETED', r)!.text);
        console.log(`  steps: ${r.steps.map((s) => `${s.step} ${formatDuration(s.seconds)}`).join(', ')}`);
        for (const n of r.next) console.log(`  next: ${n}`);
      },
    );
}

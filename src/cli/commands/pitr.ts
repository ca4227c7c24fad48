// `pgwarden pitr`: start a pointInTimeRecovery of a cluster, in place after approval or as a
// rehearsal on a scratch copy.
import { Option, type Command } from 'commander';
import type { Config } from '../../config/index.js';
import type { RecoveryMode } from '../../activities/pitr/types.js';
import { formatBytes } from '../../lib/diskSpace.js';
import { formatBackupId, pitrWorkflowId } from '../../lib/ids.js';
import type { RecoveryTarget } from '../../lib/recovery.js';
import type { PointInTimeRecoveryInput, PointInTimeRecoveryResult } from '../../workflows/pointInTimeRecovery.js';
import { requireCluster, usage } from '../errors.js';
import { formatDuration } from '../format.js';
import { connectClient, startRun, waitWithProgress } from '../lazyClient.js';
import { reportPlan } from '../reportPlan.js';
import { outcomeOf } from '../runReport.js';

export function registerPitrCommand(program: Command, config: () => Config): void {
  program
    .command('pitr')
    .description(
      'start a pointInTimeRecovery of a cluster: in place after approval (the old data directory is kept), or a rehearsal on a scratch copy',
    )
    .requiredOption('--cluster <name>', 'cluster name from the config')
    .option('--target-time <time>', "recover to this time, with its zone: '2026-11-22 14:31:00+00'")
    .option('--target-lsn <lsn>', 'recover to this WAL position, e.g. 0/3000060')
    .option('--target-name <name>', 'recover to a restore point made with pg_create_restore_point()')
    .option('--latest', 'recover to the end of the archived WAL')
    .addOption(
      new Option('--mode <mode>', 'in-place (approval needed) or rehearsal (scratch copy, live cluster untouched)')
        .choices(['in-place', 'rehearsal'])
        .default('in-place'),
    )
    .option('--approval-timeout <duration>', 'how long to wait for approve/reject (in-place)', '24 hours')
    .option('--wait', 'wait for the result, showing progress')
    .addOption(new Option('--json', 'print the result as JSON'))
    .addHelpText(
      'after',
      "\nExamples:\n  pgwarden pitr --cluster main --target-time '2026-11-22 14:31:00+00' --wait\n" +
        '  pgwarden approve pgwarden/main/pitr/20261122T143500Z --approver alice --reason "INC-42: undo the DELETE"\n' +
        '  pgwarden pitr --cluster main --latest --mode rehearsal --wait',
    )
    .action(
      async (opts: {
        cluster: string;
        targetTime?: string;
        targetLsn?: string;
        targetName?: string;
        latest?: boolean;
        mode: RecoveryMode;
        approvalTimeout: string;
        wait?: boolean;
        json?: boolean;
      }) => {
        const cfg = config();
        requireCluster(cfg, opts.cluster);
        const targets: RecoveryTarget[] = [];
        if (opts.targetTime) targets.push({ time: opts.targetTime });
        if (opts.targetLsn) targets.push({ lsn: opts.targetLsn });
        if (opts.targetName) targets.push({ name: opts.targetName });
        if (opts.latest) targets.push({ latest: true });
        if (targets.length !== 1)
          throw usage('give exactly one of --target-time, --target-lsn, --target-name, --latest');
        const input: PointInTimeRecoveryInput = {
          cluster: opts.cluster,
          target: targets[0]!,
          mode: opts.mode,
          approvalTimeout: opts.approvalTimeout,
        };
        const client = await connectClient(cfg);
        const workflowId = pitrWorkflowId(opts.cluster, formatBackupId(new Date()), opts.mode);
        const handle = await startRun(
          client,
          cfg,
          { cluster: opts.cluster, kind: 'pitr' },
          { workflowId, args: [input] },
        );
        if (!opts.json) console.log(`started pointInTimeRecovery ${workflowId} (${opts.mode})`);
        if (!opts.wait) return reportPlan(handle, !!opts.json, opts.mode === 'in-place');
        const r = await waitWithProgress<PointInTimeRecoveryResult>(handle, !!opts.json);
        process.exitCode = outcomeOf('COMPLETED', r)!.exitCode; // 3 when rejected or nobody approved
        if (opts.json) return void console.log(JSON.stringify(r));
        if (!r.recovery)
          return void console.log(
            `not recovered: ${r.outcome}${r.decision ? ` by ${r.decision.approver} (${r.decision.reason})` : ''}`,
          );
        console.log(
          `${r.outcome}: ${r.cluster} to ${r.target} from base backup ${r.backupId}, timeline ${r.recovery.timeline}, at ${r.recovery.reachedLsn}`,
        );
        if (r.recovery.stoppedAt) console.log(`  ${r.recovery.stoppedAt}`);
        console.log(`  steps: ${r.steps.map((s) => `${s.step} ${formatDuration(s.seconds)}`).join(', ')}`);
        if (r.preReplay)
          console.log(
            `  replayed before the approval: ${formatBytes(r.preReplay.replayedBytes)} from ${r.preReplay.redoStart}; after it from ${r.recovery.redoStart ?? r.preReplay.restartLsn}`,
          );
        if (r.previousDataDirectory) console.log(`  the previous data directory is kept at ${r.previousDataDirectory}`);
      },
    );
}

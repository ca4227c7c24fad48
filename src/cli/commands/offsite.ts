// `pgwarden offsite sync|check`: copy backups and WAL offsite (S3, rsync over ssh) and check the copies.
import { Option, type Command } from 'commander';
import type { Config } from '../../config/index.js';
import { formatBackupId, offsiteWorkflowId } from '../../lib/ids.js';
import type { OffsiteSyncInput, OffsiteSyncResult } from '../../workflows/offsiteSync.js';
import { requireCluster, usage, UserError } from '../errors.js';
import { offsiteReportLines } from '../format.js';
import { connectClient, startRun, waitWithProgress } from '../lazyClient.js';

export function registerOffsiteCommands(program: Command, config: () => Config): void {
  const offsite = program
    .command('offsite')
    .description('copy backups and WAL offsite (S3, rsync over ssh) and check the copies')
    .addHelpText(
      'after',
      '\nExamples:\n  pgwarden offsite sync --cluster main --wait\n  pgwarden offsite sync --cluster main --wal-only --check quick\n  pgwarden offsite check --cluster main --repository s3',
    );

  for (const what of ['sync', 'check'] as const) {
    offsite
      .command(what)
      .description(
        what === 'sync'
          ? 'start an offsiteSync: upload what each offsite repository lacks (never deleting or overwriting there), its retention, then the remote check'
          : 'run the remote check alone: every object present, with the size and sha256 the local manifests expect',
      )
      .requiredOption('--cluster <name>', 'cluster name from the config')
      .option('--repository <name...>', 'offsite repositories (default: all of the cluster)')
      .option('--wal-only', 'only the WAL archive')
      .addOption(
        new Option(
          '--check <depth>',
          'full: read back and hash every object; quick: sizes and recorded sha256, content of new uploads',
        )
          .choices(['full', 'quick'])
          .default('full'),
      )
      .option('--wait', 'wait for the result, showing progress (check: always waits)')
      .addOption(new Option('--json', 'print the result as JSON'))
      .addHelpText('after', `\nExample:\n  pgwarden offsite ${what} --cluster main${what === 'sync' ? ' --wait' : ''}`)
      .action(
        async (opts: {
          cluster: string;
          repository?: string[];
          walOnly?: boolean;
          check: 'full' | 'quick';
          wait?: boolean;
          json?: boolean;
        }) => {
          const cfg = config();
          requireCluster(cfg, opts.cluster);
          for (const r of opts.repository ?? []) {
            if (cfg.repositories[r]?.type !== 's3' && cfg.repositories[r]?.type !== 'rsync')
              throw usage(`"${r}" is not an s3 or rsync repository in the config`);
          }
          const input: OffsiteSyncInput = {
            cluster: opts.cluster,
            repositories: opts.repository,
            walOnly: opts.walOnly,
            check: opts.check,
            checkOnly: what === 'check',
          };
          const client = await connectClient(cfg);
          const workflowId = offsiteWorkflowId(
            opts.cluster,
            formatBackupId(new Date()),
            what === 'check' ? 'check' : opts.walOnly ? 'wal' : 'sync',
          );
          const handle = await startRun(
            client,
            cfg,
            { cluster: opts.cluster, kind: 'offsite' },
            { workflowId, args: [input] },
          );
          if (!opts.json) console.log(`started offsiteSync ${workflowId}`);
          if (!opts.wait && what === 'sync') return void (opts.json && console.log(JSON.stringify({ workflowId })));
          // A failed run still carries every repository's result: the good ones' lines, and each problem on its own line.
          const r = await waitWithProgress<OffsiteSyncResult>(handle, !!opts.json).catch((err: unknown) => {
            const failed = offsiteFailure(err);
            if (!failed) throw err;
            if (opts.json) console.log(JSON.stringify(failed));
            else for (const line of offsiteReportLines(failed.repositories)) console.log(line);
            const names = failed.repositories.filter((x) => x.error).map((x) => x.repository);
            throw new UserError(
              `offsite ${what} failed for ${names.join(', ')}${opts.json ? '' : ' (problems above)'}`,
            );
          });
          if (opts.json) return void console.log(JSON.stringify(r));
          for (const line of offsiteReportLines(r.repositories)) console.log(line);
        },
      );
  }
}

/** The result an OffsiteSyncFailed run carries in its failure's details, else undefined. */
function offsiteFailure(err: unknown): OffsiteSyncResult | undefined {
  if (!(err instanceof Error) || err.name !== 'WorkflowFailedError') return undefined;
  const cause = (err as { cause?: { type?: string; details?: unknown[] } }).cause;
  const details =
    cause?.type === 'OffsiteSyncFailed' ? (cause.details?.[0] as OffsiteSyncResult | undefined) : undefined;
  return Array.isArray(details?.repositories) ? details : undefined;
}

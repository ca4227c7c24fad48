// `pgwarden retention --cluster C [--database D] [--apply]`: local retention on its own, as the old
// cleanup scripts ran it. Runs the `retention` workflow on a worker (the repository is on the
// worker's host, and the workflow uses the very activities the backups and walMaintenance run, so
// the plan is what the schedules would do); prints each backup kept with its reasons, what goes and
// why, the WAL summary, and what waits for the offsite check.
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';
import { formatBytes } from '../../lib/diskSpace.js';
import { formatBackupId, retentionWorkflowId } from '../../lib/ids.js';
import { requireCluster } from '../errors.js';
import type { LocalRetentionResult } from '../../activities/retention.js';
import type { RetentionInput, RetentionRunResult } from '../../workflows/retention.js';

export function registerRetentionCommands(program: Command, config: () => Config): void {
  program
    .command('retention')
    .description(
      "show local retention's plan (each backup kept and why, what goes and why, WAL kept and deleted, what waits for the offsite check); --apply carries it out",
    )
    .requiredOption('--cluster <name>', 'cluster name from the config')
    .option('--database <name>', "only this database's logical backups (base backups and WAL are left alone)")
    .option('--apply', 'delete what the plan lets go (default: only show the plan)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  pgwarden retention --cluster main\n  pgwarden retention --cluster main --database app\n  pgwarden retention --cluster main --apply',
    )
    .action(async (opts: { cluster: string; database?: string; apply?: boolean; json?: boolean }) => {
      const cfg = config();
      requireCluster(cfg, opts.cluster);
      const { connectClient, startRun } = await import('../client.js');
      const client = await connectClient(cfg);
      const input: RetentionInput = { cluster: opts.cluster, database: opts.database, apply: !!opts.apply };
      const workflowId = retentionWorkflowId(opts.cluster, formatBackupId(new Date()), !!opts.apply);
      const handle = await startRun(
        client,
        cfg,
        { cluster: opts.cluster, database: opts.database, kind: 'retention' },
        { workflowId, args: [input] },
      );
      const r = (await handle.result()) as RetentionRunResult;
      if (opts.json) return void console.log(JSON.stringify(r));
      for (const line of retentionReport(r)) console.log(line);
    });
}

/** The plan or what was done, one backup per line. */
export function retentionReport(r: RetentionRunResult): string[] {
  const gone = r.applied ? 'deleted' : 'delete';
  const lines = [
    r.applied
      ? `retention applied to cluster ${r.cluster}`
      : `retention plan for cluster ${r.cluster} (nothing deleted; --apply carries it out)`,
  ];
  const backups = (title: string, d: LocalRetentionResult) => {
    lines.push(
      `${title}: keep ${d.keep.length}, ${gone} ${d.delete.length}${d.waitingOffsite?.length ? `, ${d.waitingOffsite.length} wait for offsite` : ''}`,
    );
    for (const k of d.keep) lines.push(`  keep    ${k.backupId}  ${k.reasons.join(', ')}`);
    for (const x of d.delete) lines.push(`  ${gone.padEnd(7)} ${x.backupId}  ${x.reason}`);
    for (const w of d.waitingOffsite ?? [])
      lines.push(
        `  waits   ${w.backupId}  ${w.reason}; kept until ${w.repositories.join(', ')} confirmed it (offsite check)`,
      );
  };
  for (const l of r.logical) backups(`logical ${r.cluster}/${l.database}`, l.retention);
  if (r.logical.length === 0 && !r.base) lines.push('no logical backups');
  if (r.base) backups('base backups', r.base);
  if (r.wal) {
    const w = r.wal;
    lines.push(
      `WAL (PITR window ${w.window}): keep ${w.kept}${w.keepFrom ? `, continuous from ${w.keepFrom.segment} (base backup ${w.keepFrom.backupId})` : ''}; ${gone} ${w.deleted.length} (${formatBytes(w.bytesFreed)})${w.waitingOffsite ? `; ${w.waitingOffsite} wait for offsite` : ''}`,
    );
    for (const range of w.ranges ?? [])
      lines.push(`  keep    ${range.from}..${range.to}  base backup ${range.backupId} to its consistency point`);
    for (const f of w.waitingOffsiteFiles ?? [])
      lines.push(`  waits   ${f.name}  kept until ${f.repositories.join(', ')} confirmed it (offsite check)`);
  }
  const waiting = r.waitingOffsite.backups + r.waitingOffsite.walFiles;
  if (waiting > 0)
    lines.push(
      `waiting for the offsite check: ${r.waitingOffsite.backups} backups, ${r.waitingOffsite.walFiles} WAL files (pgwarden offsite sync --cluster ${r.cluster})`,
    );
  return lines;
}

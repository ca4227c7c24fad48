// `pgwarden backups --cluster C [--database D] [--json] [--via-worker]`: what the repository holds
// (pgBackRest's `info`). `pgwarden list` lists runs; this lists backups.
//
// Where it is read: the repository is a directory on a worker's host. When that directory (with the
// cluster's folder in it) is readable here, the CLI reads it itself: no worker needed, which is what
// an operator wants when the worker or Temporal is down and they need to know what can be restored.
// Otherwise (the CLI on a laptop, an empty directory of the same name), or with --via-worker, it
// runs the `repositoryInfo` workflow: one read-only activity on a worker of the shared queue, which
// reads the repository where it is, with the worker's permissions (the repository is 0700).
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';
import { formatBackupId } from '../../lib/ids.js';
import type { BackupInfo, RepositoryInfo } from '../../lib/repositoryInfo.js';
import { requireCluster } from '../errors.js';
import { formatZonedTime } from '../format.js';
import { formatBytes } from '../../lib/diskSpace.js';

export function registerBackupsCommands(program: Command, config: () => Config): void {
  program
    .command('backups')
    .description(
      "what the cluster's repository holds: each backup's kind, size, when it finished, its last verification, its offsite copies; the WAL archive's extent",
    )
    .requiredOption('--cluster <name>', 'cluster name from the config')
    .option('--database <name>', "only this database's logical backups (base backups and WAL are listed still)")
    .option('--via-worker', 'read the repository on a worker even when its directory is readable here')
    .option('--json', 'print the listing as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  pgwarden backups --cluster main\n  pgwarden backups --cluster main --database app --json',
    )
    .action(async (opts: { cluster: string; database?: string; viaWorker?: boolean; json?: boolean }) => {
      const cfg = config();
      requireCluster(cfg, opts.cluster);
      const input = { cluster: opts.cluster, database: opts.database };
      // Read here when this user may (works with Temporal down); a directory deeper down that only
      // the repository's owner may read (0700 since backups are private) sends it to a worker.
      const here =
        !opts.viaWorker && (await readableHere(cfg, opts.cluster))
          ? await (
              await import('../../activities/repositoryInfo.js')
            )
              .readRepositoryInfo(cfg, input, 'here')
              .catch((err: NodeJS.ErrnoException) => {
                if (err.code === 'EACCES' || err.code === 'EPERM') return undefined;
                throw err;
              })
          : undefined;
      const info = here ?? (await viaWorker(cfg, input));
      if (opts.json) return void console.log(JSON.stringify(info));
      for (const line of backupsReport(info)) console.log(line);
    });
}

/** Whether `<repository>/<cluster>` is a directory this process may read. */
async function readableHere(cfg: Config, cluster: string): Promise<boolean> {
  const repo = cfg.repositories[cfg.clusters[cluster]!.repository];
  if (repo?.type !== 'local') return false;
  return access(join(repo.path, cluster), constants.R_OK | constants.X_OK).then(
    () => true,
    () => false,
  );
}

async function viaWorker(cfg: Config, input: { cluster: string; database?: string }): Promise<RepositoryInfo> {
  const { connectClient } = await import('../client.js');
  const client = await connectClient(cfg);
  return client.workflow
    .execute('repositoryInfo', {
      taskQueue: cfg.temporal.taskQueue,
      workflowId: `pgwarden/${input.cluster}/backups/${formatBackupId(new Date())}-${Math.random().toString(36).slice(2, 6)}`,
      args: [input],
      staticSummary: `list the backups of ${input.cluster}${input.database ? `/${input.database}` : ''} (pgwarden backups)`,
      // A listing nobody waits for is worthless: no worker within a minute is an error, not a queued run.
      workflowExecutionTimeout: '1 minute',
    })
    .catch((err: Error) => {
      throw err.name === 'WorkflowFailedError' &&
        /timed out|TIMEOUT/i.test(`${err.message} ${(err.cause as Error | undefined)?.message ?? ''}`)
        ? new Error(`no worker on "${cfg.temporal.taskQueue}" read the repository within a minute (is one running?)`)
        : err;
    }) as Promise<RepositoryInfo>;
}

const when = (iso: string, timeZone?: string) => formatZonedTime(new Date(iso), timeZone);

function verifiedText(b: BackupInfo, timeZone?: string): string {
  if (!b.verified) return 'never';
  return `${b.verified.ok ? 'ok' : 'FAILED'} ${when(b.verified.at, timeZone)}`;
}

/** The listing as a table: one backup per line, then the WAL archive. */
export function backupsReport(info: RepositoryInfo, timeZone?: string): string[] {
  const lines = [
    `repository "${info.repository}" (${info.path}${info.readOn === 'here' ? '' : ` on ${info.readOn}`}), cluster ${info.cluster}`,
  ];
  if (info.backups.length === 0) lines.push('no backups');
  else {
    const rows = info.backups.map((b) => [
      b.backupId,
      b.kind,
      b.database ?? '-',
      formatBytes(b.bytes),
      when(b.finishedAt, timeZone),
      verifiedText(b, timeZone),
      info.offsiteRepositories.length === 0 ? '-' : b.offsite.map((o) => o.repository).join(',') || 'none yet',
    ]);
    const header = ['BACKUP ID', 'KIND', 'DATABASE', 'SIZE', 'FINISHED', 'VERIFIED', 'OFFSITE'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const r of [header, ...rows])
      lines.push(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
  }
  const w = info.wal;
  lines.push(
    w.files === 0
      ? 'WAL archive: empty'
      : `WAL archive: ${w.files} files, ${formatBytes(w.bytes)}${w.firstSegment ? `, segments ${w.firstSegment} .. ${w.lastSegment}` : ''}` +
          (w.offsite.length
            ? `; offsite: ${w.offsite.map((o) => `${o.repository} ${o.files} confirmed`).join(', ')}`
            : ''),
  );
  return lines;
}

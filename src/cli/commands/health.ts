// `pgwarden health`: run a healthCheck now and print its alerts (the schedule runs it every 15 minutes).
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';
import { formatBackupId, healthCheckWorkflowId } from '../../lib/ids.js';
import { formatBytes } from '../../lib/diskSpace.js';
import { usedPercent } from '../../lib/health.js';
import { requireCluster } from '../errors.js';
import type { HealthCheckInput, HealthCheckResult } from '../../workflows/healthCheck.js';

export function registerHealthCommands(program: Command, config: () => Config): void {
  program
    .command('health')
    .description(
      'run a healthCheck now: backup age, verified restores, WAL archiving, repository disk, offsite drift; alerts go to the configured channels',
    )
    .requiredOption('--cluster <name>', 'cluster name from the config')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  pgwarden health --cluster main')
    .action(async (opts: { cluster: string; json?: boolean }) => {
      const cfg = config();
      requireCluster(cfg, opts.cluster);
      const { connectClient, startRun } = await import('../client.js');
      const client = await connectClient(cfg);
      const input: HealthCheckInput = { cluster: opts.cluster };
      const handle = await startRun(
        client,
        cfg,
        { cluster: opts.cluster, kind: 'health' },
        { workflowId: healthCheckWorkflowId(opts.cluster, formatBackupId(new Date())), args: [input] },
      );
      const r = (await handle.result()) as HealthCheckResult;
      if (!r.healthy) process.exitCode = 2;
      if (opts.json) return void console.log(JSON.stringify(r));
      const s = r.snapshot;
      for (const b of s.backups) {
        console.log(
          `${b.kind === 'base' ? 'base backup' : `${s.cluster}/${b.database}`}: newest ${b.lastAt ?? 'none'}${b.lastBytes !== null ? ` (${formatBytes(b.lastBytes)})` : ''}${b.kind === 'logical' ? `, last verified ${b.lastVerifiedAt ?? 'never'}` : ''}`,
        );
      }
      console.log(
        `repository ${s.repository.name}: ${formatBytes(s.repository.freeBytes)} free (${usedPercent(s.repository).toFixed(0)}% used)`,
      );
      for (const o of s.offsite)
        console.log(`offsite ${o.repository}: ${o.error ? `unreachable: ${o.error}` : `${o.missing} objects missing`}`);
      if (r.healthy) console.log('healthy');
      for (const a of r.alerts) console.log(`ALERT ${a.message}`);
      if (r.notification.error) console.log(`notification failed: ${r.notification.error}`);
      if (r.notification.sent)
        console.log(
          `notified (${r.notification.sent}) via ${r.notification.delivery?.sent.join(', ') || 'no channel'}`,
        );
    });
}

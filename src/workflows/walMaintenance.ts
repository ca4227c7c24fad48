// walMaintenance: keep the WAL archive healthy and bounded. Replaces wal-archive-cleanup.sh:
// health (pg_stat_archiver: lag, failures) → retention (continuous WAL inside the PITR window,
// start → stop of older kept base backups; what no offsite check confirmed yet waits) → size
// (report, alert over the threshold). Alerts are returned in the result; sending them on is a later step.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities, ArchiverHealth, WalArchiveSize, WalRetentionResult } from '../activities/index.js';
import { QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { trackProgress } from './messages.js';
import { selfLabels } from './selfLabels.js';

export interface WalMaintenanceInput {
  cluster: string;
  /** Report what retention would delete, delete nothing. */
  dryRun?: boolean;
}

export interface WalMaintenanceResult {
  cluster: string;
  health: ArchiverHealth;
  retention: WalRetentionResult;
  size: WalArchiveSize;
  /** Every alert of every step; empty when all is well. */
  alerts: string[];
}

const { archiverHealth, applyWalRetention, walArchiveSize } = proxyActivities<Activities>(QUICK_ACTIVITY);

export async function walMaintenance(input: WalMaintenanceInput): Promise<WalMaintenanceResult> {
  const step = trackProgress('health');
  await selfLabels('wal-maintenance', input);
  const health = await archiverHealth({ cluster: input.cluster });
  step('retention', input.dryRun ? 'dry run' : undefined);
  const retention = await applyWalRetention({ cluster: input.cluster, dryRun: input.dryRun });
  step('size');
  const size = await walArchiveSize({ cluster: input.cluster });
  step('done');
  const alerts = [...health.alerts, ...(size.alert ? [size.alert] : [])];
  // WAL past the PITR window that no offsite check confirmed: the copy offsite is behind.
  if (retention.waitingOffsite) {
    const repositories = [...new Set((retention.waitingOffsiteFiles ?? []).flatMap((f) => f.repositories))].join(', ');
    alerts.push(`cluster "${input.cluster}": ${retention.waitingOffsite} WAL files past the PITR window are kept because ${repositories} has not confirmed them (pgwarden offsite sync --cluster ${input.cluster})`);
  }
  return { cluster: input.cluster, health, retention, size, alerts };
}

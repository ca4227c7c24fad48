// walMaintenance: keep the WAL archive healthy and bounded. Replaces wal-archive-cleanup.sh:
// health (pg_stat_archiver: lag, failures) → retention (continuous WAL inside the PITR window,
// start → stop of older kept base backups; what no offsite check confirmed yet waits) → size
// (report, alert over the threshold). Alerts are returned in the result; sending them on is a later step.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities, ArchiverHealth, WalArchiveSize, WalRetentionResult } from '../activities/index.js';
import { QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { showingFailure, showOutcome, trackProgress } from './messages.js';
import { formatBytes } from '../lib/diskSpace.js';
import { clipText, stepSummary } from '../lib/runSummary.js';
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

/** The run's current details end with its outcome: what retention freed, the archive's size, the alerts. */
export async function walMaintenance(input: WalMaintenanceInput): Promise<WalMaintenanceResult> {
  return showingFailure(async () => {
    const r = await maintain(input);
    const freed = `${r.retention.deleted.length} WAL files ${r.retention.dryRun ? 'would be deleted' : 'deleted'} (${formatBytes(r.retention.bytesFreed)})`;
    const alerts = r.alerts.length ? `; ${r.alerts.length} alerts: ${r.alerts.join('; ')}` : '';
    showOutcome(clipText(`${freed}; the archive holds ${r.size.files} files, ${formatBytes(r.size.bytes)}${alerts}`));
    return r;
  });
}

async function maintain(input: WalMaintenanceInput): Promise<WalMaintenanceResult> {
  const step = trackProgress('health');
  await selfLabels('wal-maintenance', input);
  const health = await archiverHealth.executeWithOptions(
    { summary: stepSummary(`read ${input.cluster}'s pg_stat_archiver (archiving lag, failures)`) },
    [{ cluster: input.cluster }],
  );
  step('retention', input.dryRun ? 'dry run' : undefined);
  const retention = await applyWalRetention.executeWithOptions(
    {
      summary: stepSummary(
        `${input.dryRun ? 'plan' : 'apply'} WAL retention for ${input.cluster}: the PITR window and older base backups' WAL kept`,
      ),
    },
    [{ cluster: input.cluster, dryRun: input.dryRun }],
  );
  step('size');
  const size = await walArchiveSize.executeWithOptions(
    { summary: stepSummary(`measure ${input.cluster}'s WAL archive`) },
    [{ cluster: input.cluster }],
  );
  step('done');
  const alerts = [...health.alerts, ...(size.alert ? [size.alert] : [])];
  // WAL past the PITR window that no offsite check confirmed: the copy offsite is behind.
  if (retention.waitingOffsite) {
    const repositories = [...new Set((retention.waitingOffsiteFiles ?? []).flatMap((f) => f.repositories))].join(', ');
    alerts.push(
      `cluster "${input.cluster}": ${retention.waitingOffsite} WAL files past the PITR window are kept because ${repositories} has not confirmed them (pgwarden offsite sync --cluster ${input.cluster})`,
    );
  }
  return { cluster: input.cluster, health, retention, size, alerts };
}

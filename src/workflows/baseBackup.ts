// baseBackup: the physical backup of a cluster, the starting point of every point-in-time recovery.
// Replaces backup-physical.sh: preflight (archiving on, room) → pg_basebackup streamed into the
// repository with its backup_manifest and WAL range → retention (the same GFS policy as logical
// backups; walMaintenance then frees the WAL only deleted base backups needed).
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities, BaseBackupResult, BasePreflight } from '../activities/index.js';
import { LONG_ACTIVITY, QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { formatBackupId } from '../lib/ids.js';
import type { RetentionDecision } from '../lib/retention.js';
import { showingFailure, showOutcome, trackProgress } from './messages.js';
import { formatBytes } from '../lib/diskSpace.js';
import { clipText, stepSummary } from '../lib/runSummary.js';
import { selfLabels } from './selfLabels.js';

export interface BaseBackupWorkflowInput {
  cluster: string;
  /** Default: the workflow's start time, e.g. 20261122T030000Z. */
  backupId?: string;
}

export interface BaseBackupWorkflowResult extends BaseBackupResult {
  preflight: BasePreflight;
  /** What the retention policy kept and deleted after this backup. */
  retention: RetentionDecision;
}

const { preflightBaseBackup, applyBaseRetention } = proxyActivities<Activities>(QUICK_ACTIVITY);
const { createBaseBackup } = proxyActivities<Activities>(LONG_ACTIVITY);

/** The run's current details end with its outcome: the backup, its size and WAL range, or why it failed. */
export async function baseBackup(input: BaseBackupWorkflowInput): Promise<BaseBackupWorkflowResult> {
  return showingFailure(async () => {
    const r = await backUp(input);
    const deleted = r.retention.delete.length
      ? `; retention deleted ${r.retention.delete.length} older base backups`
      : '';
    showOutcome(
      clipText(
        `base backup of ${r.cluster}${fromWhere(r.source)} as ${r.backupId}, ${formatBytes(r.bytes)}${r.reused ? ' (already committed)' : ''}, WAL ${r.startLsn} to ${r.stopLsn} on timeline ${r.timeline}${deleted}`,
      ),
    );
    return r;
  });
}

async function backUp(input: BaseBackupWorkflowInput): Promise<BaseBackupWorkflowResult> {
  const step = trackProgress('preflight');
  await selfLabels('base', input);
  const target = { cluster: input.cluster, backupId: input.backupId ?? formatBackupId(workflowInfo().startTime) };
  const preflight = await preflightBaseBackup.executeWithOptions(
    {
      summary: stepSummary(
        `check ${target.cluster} can take base backup ${target.backupId} (WAL archiving on, room on disk)`,
      ),
    },
    [target],
  );
  // Clusters with standbys: the source preflight chose goes to pg_basebackup (the same commands,
  // another argument: runs that started before it replay unchanged).
  const source = preflight.source;
  const from = fromWhere(source);
  step('backup', `${target.backupId}${from}`);
  const result = await createBaseBackup.executeWithOptions(
    {
      summary: stepSummary(
        `stream ${target.cluster}${from} with pg_basebackup into the repository as ${target.backupId}, with its backup_manifest`,
      ),
    },
    [source ? { ...target, source } : target],
  );
  step('retention');
  const retention = await applyBaseRetention.executeWithOptions(
    { summary: stepSummary(`apply the retention policy to ${target.cluster}'s base backups`) },
    [{ cluster: target.cluster }],
  );
  step('done');
  return { ...result, preflight, retention };
}

/** ` from standby "replica1"`, ` from the primary` (a cluster with standbys), or nothing. */
function fromWhere(source: BaseBackupResult['source']): string {
  return source?.role === 'standby' ? ` from standby "${source.name}"` : source ? ' from the primary' : '';
}

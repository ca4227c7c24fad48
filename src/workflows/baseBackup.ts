// baseBackup: the physical backup of a cluster, the starting point of every point-in-time recovery.
// Replaces backup-physical.sh: preflight (archiving on, room) → pg_basebackup streamed into the
// repository with its backup_manifest and WAL range → done.
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities, BaseBackupResult, BasePreflight } from '../activities/index.js';
import { LONG_ACTIVITY, QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { formatBackupId } from '../lib/ids.js';
import { trackProgress } from './messages.js';

export interface BaseBackupWorkflowInput {
  cluster: string;
  /** Default: the workflow's start time, e.g. 20261122T030000Z. */
  backupId?: string;
}

export interface BaseBackupWorkflowResult extends BaseBackupResult {
  preflight: BasePreflight;
}

const { preflightBaseBackup } = proxyActivities<Activities>(QUICK_ACTIVITY);
const { createBaseBackup } = proxyActivities<Activities>(LONG_ACTIVITY);

export async function baseBackup(input: BaseBackupWorkflowInput): Promise<BaseBackupWorkflowResult> {
  const step = trackProgress('preflight');
  const target = { cluster: input.cluster, backupId: input.backupId ?? formatBackupId(workflowInfo().startTime) };
  const preflight = await preflightBaseBackup(target);
  step('backup', target.backupId);
  const result = await createBaseBackup(target);
  step('done');
  return { ...result, preflight };
}

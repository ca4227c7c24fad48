// offsiteSync: the offsite copy. Replaces backup-offsite.sh / backup_to_s3.sh / an rsync cron line:
// plan (which repositories) → per repository: probe (reachable and usable), upload what it lacks
// (never deleting or overwriting anything there) → the remote check (size and sha256 of every
// object against the local manifests) → its own retention, only after a passing check. One repository failing does not stop the
// others; the workflow fails at the end naming each failure.
import { ApplicationFailure, patched, proxyActivities } from '@temporalio/workflow';
import type { Activities, CheckDepth, CheckReport, RetentionResult, SyncResult } from '../activities/index.js';
import { LONG_ACTIVITY, QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { trackProgress } from './messages.js';
import { selfLabels } from './selfLabels.js';

export interface OffsiteSyncInput {
  cluster: string;
  /** Names of offsite repositories; default: the cluster's `offsite` list, else every s3/rsync repository. */
  repositories?: string[];
  /** Ship only the WAL archive (the 6-hourly WAL run); no retention; the check defaults to quick. */
  walOnly?: boolean;
  /**
   * `full` (default): read back and hash every remote object. `quick`: sizes and recorded sha256
   * of every object, content of what this run uploaded.
   */
  check?: CheckDepth;
  /** Run the remote check alone (`pgwarden offsite check`): nothing uploaded, nothing removed. */
  checkOnly?: boolean;
}

export interface OffsiteRepositoryResult {
  repository: string;
  sync?: SyncResult;
  retention?: RetentionResult;
  check?: CheckReport;
  /** Why this repository failed, when it did. */
  error?: string;
}

export interface OffsiteSyncResult {
  cluster: string;
  repositories: OffsiteRepositoryResult[];
}

const quick = proxyActivities<Activities>(QUICK_ACTIVITY);
const long = proxyActivities<Activities>(LONG_ACTIVITY);

export async function offsiteSync(input: OffsiteSyncInput): Promise<OffsiteSyncResult> {
  const step = trackProgress('plan');
  await selfLabels('offsite', input);
  // Each repository probed on its own, in its own try: a wrong S3 secret no longer keeps the rsync
  // copy from being made, and every broken repository is named (before: the first one, for all).
  const probeEach = patched('offsite-probe-per-repository');
  const names = await quick.planOffsite({ cluster: input.cluster, repositories: input.repositories, ...(probeEach ? { probe: false } : {}) });
  const results: OffsiteRepositoryResult[] = [];
  for (const repository of names) {
    const target = { cluster: input.cluster, repository, walOnly: input.walOnly };
    const result: OffsiteRepositoryResult = { repository };
    results.push(result);
    try {
      if (probeEach) {
        step('probe', repository);
        await quick.probeOffsite({ repository });
      }
      if (!input.checkOnly) {
        step('upload', repository);
        result.sync = await long.syncToOffsite(target);
      }
      step('check', repository);
      const depth = result.sync?.keysOmitted ? 'full' : (input.check ?? (input.walOnly ? 'quick' : 'full'));
      result.check = await long.checkOffsite({ ...target, depth, keys: depth === 'quick' ? result.sync?.uploadedKeys : undefined, syncedAt: result.sync?.syncedAt });
      // Retention only after a passing check: never remove old copies while the newer ones are in doubt.
      if (!input.walOnly && !input.checkOnly) {
        step('retention', repository);
        result.retention = await long.applyOffsiteRetention(target);
      }
      // The result stays small in history however many objects moved.
      if (result.sync) result.sync.uploadedKeys = result.sync.uploadedKeys.slice(0, 20);
    } catch (err) {
      result.error = rootMessage(err);
    }
  }
  step('done');
  const failed = results.filter((r) => r.error);
  if (failed.length > 0) {
    throw ApplicationFailure.nonRetryable(failed.map((r) => `${r.repository}: ${r.error}`).join('\n'), 'OffsiteSyncFailed', { cluster: input.cluster, repositories: results });
  }
  return { cluster: input.cluster, repositories: results };
}

/** The activity's own message (an ActivityFailure wraps the ApplicationFailure that says what happened). */
function rootMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e && e.cause) e = e.cause as typeof e;
  return e?.message ?? String(err);
}

// offsiteSync: the offsite copy. Replaces backup-offsite.sh / backup_to_s3.sh / an rsync cron line:
// plan (which repositories) → per repository: probe (reachable and usable), upload what it lacks
// (never deleting or overwriting anything there) → the remote check (size and sha256 of every
// object against the local manifests) → its own retention, only after a passing check. One repository failing does not stop the
// others; the workflow fails at the end naming each failure.
import { ApplicationFailure, patched, proxyActivities } from '@temporalio/workflow';
import type { Activities, CheckDepth, CheckReport, RetentionResult, SyncResult } from '../activities/index.js';
import { LONG_ACTIVITY, QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { showingFailure, showOutcome, trackProgress } from './messages.js';
import { formatBytes } from '../lib/diskSpace.js';
import { clipText, stepSummary } from '../lib/runSummary.js';
import { rootMessage } from '../lib/runDetails.js';
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

/** The run's current details end with its outcome: per repository what moved and the check's verdict, or every failure. */
export async function offsiteSync(input: OffsiteSyncInput): Promise<OffsiteSyncResult> {
  return showingFailure(async () => {
    const r = await sync(input);
    const each = r.repositories.map(({ repository, sync: s, check, retention: kept }) =>
      [
        repository,
        s && `${s.uploaded} objects copied (${formatBytes(s.uploadedBytes)}), ${s.alreadyThere} already there`,
        check && `check passed (${check.contentChecked} read back)`,
        kept?.removedObjects && `${kept.removedObjects} removed by retention`,
      ]
        .filter(Boolean)
        .join(': '),
    );
    showOutcome(
      clipText(
        `${input.checkOnly ? 'checked' : 'synced'} ${r.cluster} offsite${each.length ? `, ${each.join('; ')}` : ': no offsite repository'}`,
      ),
    );
    return r;
  });
}

async function sync(input: OffsiteSyncInput): Promise<OffsiteSyncResult> {
  const step = trackProgress('plan');
  await selfLabels('offsite', input);
  // Each repository probed on its own, in its own try: a wrong S3 secret no longer keeps the rsync
  // copy from being made, and every broken repository is named (before: the first one, for all).
  const probeEach = patched('offsite-probe-per-repository');
  const names = await quick.planOffsite.executeWithOptions(
    {
      summary: stepSummary(
        `pick ${input.cluster}'s offsite repositories${input.repositories?.length ? `: ${input.repositories.join(', ')}` : ''}`,
      ),
    },
    [{ cluster: input.cluster, repositories: input.repositories, ...(probeEach ? { probe: false } : {}) }],
  );
  const results: OffsiteRepositoryResult[] = [];
  for (const repository of names) {
    const target = { cluster: input.cluster, repository, walOnly: input.walOnly };
    const result: OffsiteRepositoryResult = { repository };
    results.push(result);
    try {
      if (probeEach) {
        step('probe', repository);
        await quick.probeOffsite.executeWithOptions(
          { summary: stepSummary(`probe offsite repository ${repository} (reachable, usable)`) },
          [{ repository }],
        );
      }
      if (!input.checkOnly) {
        step('upload', repository);
        result.sync = await long.syncToOffsite.executeWithOptions(
          {
            summary: stepSummary(
              `copy what offsite repository ${repository} lacks of ${input.cluster}'s ${input.walOnly ? 'WAL archive' : 'backups and WAL'}`,
            ),
          },
          [target],
        );
      }
      step('check', repository);
      const depth = result.sync?.keysOmitted ? 'full' : (input.check ?? (input.walOnly ? 'quick' : 'full'));
      const checked =
        depth === 'full'
          ? 'read back and hash every object'
          : 'sizes and sha256 of every object, read back the new ones';
      result.check = await long.checkOffsite.executeWithOptions(
        { summary: stepSummary(`check ${repository} against the local manifests: ${checked}`) },
        [
          {
            ...target,
            depth,
            keys: depth === 'quick' ? result.sync?.uploadedKeys : undefined,
            syncedAt: result.sync?.syncedAt,
          },
        ],
      );
      // Retention only after a passing check: never remove old copies while the newer ones are in doubt.
      if (!input.walOnly && !input.checkOnly) {
        step('retention', repository);
        result.retention = await long.applyOffsiteRetention.executeWithOptions(
          { summary: stepSummary(`apply the retention policy to ${input.cluster}'s copies on ${repository}`) },
          [target],
        );
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
    throw ApplicationFailure.nonRetryable(
      failed.map((r) => `${r.repository}: ${r.error}`).join('\n'),
      'OffsiteSyncFailed',
      { cluster: input.cluster, repositories: results },
    );
  }
  return { cluster: input.cluster, repositories: results };
}

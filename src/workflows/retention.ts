// retention: local retention on its own, as the old cleanup scripts ran it (`pgwarden retention`).
// Plans by default, deletes only with `apply`: logical backups per database (`retention`), base
// backups (`retention.base`, keeping the PITR window's), then the WAL no kept base backup needs
// (`walRetention.window`). The same activities fullBackup, baseBackup and walMaintenance run, so
// the plan is exactly what the schedules would do; where the cluster has offsite repositories,
// whatever the remote check has not confirmed yet is reported as waiting, never deleted.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities, WalRetentionResult } from '../activities/index.js';
import type { LocalRetentionResult } from '../activities/retention.js';
import { QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { showingFailure, showOutcome, trackProgress } from './messages.js';
import { clipText, stepSummary } from '../lib/runSummary.js';
import { selfLabels } from './selfLabels.js';

export interface RetentionInput {
  cluster: string;
  /** Only this database's logical backups (base backups and WAL are the cluster's: left alone). */
  database?: string;
  /** Delete what the plan lets go; without it nothing is touched. */
  apply?: boolean;
}

export interface RetentionRunResult {
  cluster: string;
  applied: boolean;
  logical: { database: string; retention: LocalRetentionResult }[];
  base?: LocalRetentionResult;
  wal?: WalRetentionResult;
  /** Backups and WAL files kept only until every offsite repository has confirmed them. */
  waitingOffsite: { backups: number; walFiles: number };
}

const { listBackedUpDatabases, applyLogicalRetention, applyBaseRetention, applyWalRetention } =
  proxyActivities<Activities>(QUICK_ACTIVITY);

/** The run's current details end with its outcome: what was (or would be) deleted and what waits for offsite. */
export async function retention(input: RetentionInput): Promise<RetentionRunResult> {
  return showingFailure(async () => {
    const r = await applyRetention(input);
    const gone = [
      `${r.logical.reduce((n, l) => n + l.retention.delete.length, 0)} logical backups`,
      ...(r.base ? [`${r.base.delete.length} base backups`] : []),
      ...(r.wal ? [`${r.wal.deleted.length} WAL files`] : []),
    ];
    const waiting =
      r.waitingOffsite.backups || r.waitingOffsite.walFiles
        ? `; kept until offsite confirms them: ${r.waitingOffsite.backups} backups, ${r.waitingOffsite.walFiles} WAL files`
        : '';
    const scope = input.database ? `${r.cluster}/${input.database}` : r.cluster;
    showOutcome(
      clipText(`${r.applied ? 'deleted' : 'plan only, would delete'} ${gone.join(', ')} of ${scope}${waiting}`),
    );
    return r;
  });
}

async function applyRetention(input: RetentionInput): Promise<RetentionRunResult> {
  const dryRun = !input.apply;
  const step = trackProgress('logical');
  await selfLabels('retention', input);
  const databases = input.database
    ? [input.database]
    : await listBackedUpDatabases.executeWithOptions(
        { summary: stepSummary(`list ${input.cluster}'s backed-up databases`) },
        [{ cluster: input.cluster }],
      );
  const policy = (what: string) =>
    stepSummary(`${dryRun ? 'plan the retention policy for' : 'apply the retention policy to'} ${what}`);
  const result: RetentionRunResult = {
    cluster: input.cluster,
    applied: !dryRun,
    logical: [],
    waitingOffsite: { backups: 0, walFiles: 0 },
  };
  for (const database of databases) {
    result.logical.push({
      database,
      retention: await applyLogicalRetention.executeWithOptions(
        { summary: policy(`${input.cluster}/${database}'s backups`) },
        [{ cluster: input.cluster, database, dryRun }],
      ),
    });
  }
  if (!input.database) {
    step('base');
    result.base = await applyBaseRetention.executeWithOptions({ summary: policy(`${input.cluster}'s base backups`) }, [
      { cluster: input.cluster, dryRun },
    ]);
    step('wal');
    // A plan counts the base backups it would delete as gone, as the applied run will find them.
    result.wal = await applyWalRetention.executeWithOptions(
      { summary: policy(`${input.cluster}'s WAL archive (the WAL no kept base backup needs)`) },
      [
        {
          cluster: input.cluster,
          dryRun,
          withoutBackups: dryRun ? result.base.delete.map((d) => d.backupId) : undefined,
        },
      ],
    );
  }
  step('done');
  result.waitingOffsite = {
    backups: [...result.logical.map((l) => l.retention), ...(result.base ? [result.base] : [])].reduce(
      (n, r) => n + (r.waitingOffsite?.length ?? 0),
      0,
    ),
    walFiles: result.wal?.waitingOffsite ?? 0,
  };
  return result;
}

// fullBackup: the nightly logical backup of one database (or of every database with "*").
// Replaces backup-full.sh / backup-database.sh: preflight → dump → done, each a durable step.
import {
  ApplicationFailure,
  CancellationScope,
  executeChild,
  log,
  patched,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, LogicalBackupResult, PreflightResult } from '../activities/index.js';
import type { RetentionDecision } from '../lib/retention.js';
import { formatBackupId, fullBackupWorkflowId, verifyBackupWorkflowId } from '../lib/ids.js';
import { verifyBackup, type VerifyBackupResult } from './verifyBackup.js';
import { LONG_ACTIVITY, QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { showingFailure, showOutcome, trackProgress } from './messages.js';
import { clipText, stepSummary } from '../lib/runSummary.js';
import { formatBytes } from '../lib/diskSpace.js';
import { selfLabels } from './selfLabels.js';
import { childLabels } from './childLabels.js';
import { eachInTurn } from './eachInTurn.js';
import { ErrorType } from '../lib/errorTypes.js';

export interface FullBackupInput {
  cluster: string;
  /** A database name, or "*" for every connectable non-template database of the cluster. */
  database: string;
  /** Default: the workflow's start time, e.g. 20261122T020000Z. */
  backupId?: string;
  /** Verify the backup by restoring it (a child verifyBackup workflow) before finishing. */
  verify?: boolean;
  /** Reserved: offsite sync after the backup (not available in this version). */
  offsite?: boolean;
  /** With "*": back up a restore's kept copies too (`<db>_pre_restore_*`, `<db>_restore_*`); skipped by default. */
  includeRestoreCopies?: boolean;
  /** Set by a "*" run on the child of each database: recorded in the manifest. */
  allDatabases?: boolean;
}

export interface FullBackupResult {
  cluster: string;
  backups: LogicalBackupResult[];
  preflight?: PreflightResult;
  verifications: VerifyBackupResult[];
  /** What the retention policy kept and deleted after this backup (single-database runs). */
  retention?: RetentionDecision;
  /** Requested follow-ups this version does not perform yet. */
  skipped: string[];
}

const { preflightLogicalBackup, listClusterDatabases, applyLogicalRetention, resumeStandbyReplay } =
  proxyActivities<Activities>(QUICK_ACTIVITY);
const { createLogicalBackup } = proxyActivities<Activities>(LONG_ACTIVITY);

/** The run's current details end with its outcome: what was backed up and how big, or why it failed. */
export async function fullBackup(input: FullBackupInput): Promise<FullBackupResult> {
  return showingFailure(async () => {
    const result = await backUp(input);
    const [first] = result.backups;
    const verified = result.verifications.length ? ', verified by restore' : '';
    if (input.database === '*') {
      const each = result.backups.map((b) => `${b.database} ${formatBytes(b.bytes)}`).join(', ');
      showOutcome(
        clipText(
          `backed up ${result.backups.length} databases of ${input.cluster} as ${first?.backupId ?? '(none)'}${verified}: ${each}`,
        ),
      );
    } else if (first) {
      const deleted = result.retention?.delete.length
        ? `; retention deleted ${result.retention.delete.length} older backups`
        : '';
      showOutcome(
        clipText(
          `backed up ${input.cluster}/${input.database} as ${first.backupId}, ${formatBytes(first.bytes)}${first.reused ? ' (already committed)' : ''}${verified}${deleted}`,
        ),
      );
    }
    return result;
  });
}

async function backUp(input: FullBackupInput): Promise<FullBackupResult> {
  const step = trackProgress('preflight');
  await selfLabels('full', input);

  const backupId = input.backupId ?? formatBackupId(workflowInfo().startTime);
  const skipped = [input.offsite && 'offsite'].filter((s): s is string => !!s);
  if (skipped.length) log.warn('requested follow-ups are not available in this version', { skipped });

  if (input.database === '*') {
    const keepGoing = patched('full-backup-each-database');
    step('list-databases');
    const databases = await listClusterDatabases.executeWithOptions(
      {
        summary: stepSummary(
          `list ${input.cluster}'s databases to back up${input.includeRestoreCopies ? ', restore copies included' : ''}`,
        ),
      },
      [{ cluster: input.cluster, includeRestoreCopies: input.includeRestoreCopies }],
    );
    step('backup-databases', databases.join(', '));
    // One child per database, one at a time: a cluster's databases share its disks and CPU.
    const backUp = (database: string) => {
      const child: FullBackupInput = {
        cluster: input.cluster,
        database,
        backupId,
        verify: input.verify,
        allDatabases: true,
      };
      return executeChild(fullBackup, {
        workflowId: fullBackupWorkflowId(input.cluster, database, backupId),
        ...childLabels({ cluster: input.cluster, database, kind: 'full' }, { ...child }),
        args: [child],
      });
    };
    const children: FullBackupResult[] = [];
    if (keepGoing) {
      // A failed database does not stop the others: the run fails at the end naming every failed one.
      const { done, failed } = await eachInTurn(
        databases.map((database) => ({ database })),
        ({ database }) => backUp(database),
      );
      children.push(...done);
      const backedUp = children.flatMap((c) => c.backups.map((b) => ({ database: b.database, backupId: b.backupId })));
      if (failed.length) {
        step('done', `${failed.length} of ${databases.length} failed`);
        throw ApplicationFailure.nonRetryable(
          `${failed.length} of ${databases.length} databases failed to back up (${backupId}): ${failed.map((f) => `${f.database}: ${f.error}`).join('; ')}`,
          ErrorType.BackupFailed,
          { cluster: input.cluster, backupId, failed, backedUp },
        );
      }
    } else {
      // Runs started before stopped at the first failed database: their histories replay unchanged.
      for (const database of databases) children.push(await backUp(database));
    }
    step('done');
    return {
      cluster: input.cluster,
      backups: children.flatMap((c) => c.backups),
      verifications: children.flatMap((c) => c.verifications),
      skipped,
    };
  }

  const target = { cluster: input.cluster, database: input.database, backupId };
  const scope = `${input.cluster}/${input.database}`;
  const preflight = await preflightLogicalBackup.executeWithOptions(
    { summary: stepSummary(`check ${scope} can be backed up as ${backupId} (connects, room on disk)`) },
    [target],
  );
  const source = preflight.source;
  const from = source?.role === 'standby' ? ` from standby "${source.name}"` : source ? ' from the primary' : '';
  step('dump', preflight.backupExists ? 'already committed' : from ? from.slice(1) : undefined);
  const dumpInput = { ...target, ...(input.allDatabases ? { allDatabases: true } : {}), ...(source ? { source } : {}) };
  const dump = () =>
    createLogicalBackup.executeWithOptions(
      { summary: stepSummary(`dump ${scope}${from} with pg_dump, compress, encrypt, commit as ${backupId}`) },
      [dumpInput],
    );
  let backup: LogicalBackupResult;
  if (source?.role === 'standby' && patched('backup-from-standby')) {
    // The dump pauses the standby's replay; whatever becomes of it (a worker killed for good, a
    // cancelled run), replay is resumed here, in a scope a cancellation cannot skip.
    try {
      backup = await dump();
    } finally {
      await CancellationScope.nonCancellable(() =>
        resumeStandbyReplay.executeWithOptions(
          { summary: stepSummary(`resume WAL replay on standby "${source.name}" of ${input.cluster}`) },
          [{ cluster: input.cluster, standby: source.name! }],
        ),
      );
    }
  } else backup = await dump();
  const verifications: VerifyBackupResult[] = [];
  if (input.verify) {
    step('verify');
    verifications.push(
      await executeChild(verifyBackup, {
        workflowId: verifyBackupWorkflowId(input.cluster, input.database, backupId),
        ...childLabels({ cluster: input.cluster, database: input.database, kind: 'verify' }, target),
        args: [target],
      }),
    );
  }
  step('retention');
  const retention = await applyLogicalRetention.executeWithOptions(
    { summary: stepSummary(`apply the retention policy to ${scope}'s backups`) },
    [{ cluster: input.cluster, database: input.database }],
  );
  step('done');
  return { cluster: input.cluster, backups: [backup], preflight, verifications, retention, skipped };
}

// restoreDatabase: the logical restore done safely (replaces restore-database.sh). Nothing is
// touched before an operator approves; the live database is renamed, never dropped.
// plan → approve → stop → restore → verify → swap → analyze → start
import { CancellationScope, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities, VerifyPlan } from '../activities/index.js';
import { LONG_ACTIVITY, QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { restoreNames, type RestoreNames } from '../lib/ids.js';
import { announceApproval } from './approvalNotice.js';
import { trackProgress, waitForApproval, type ApprovalDecision } from './messages.js';
import { selfLabels } from './selfLabels.js';

export interface RestoreDatabaseInput {
  cluster: string;
  database: string;
  /** Default: the newest committed backup. */
  backupId?: string;
  /** How long to wait for `approve` / `reject`; default 24 hours. */
  approvalTimeout?: string;
  /** REINDEX DATABASE after the restore (ANALYZE always runs). */
  reindex?: boolean;
  /**
   * Restore only these tables into `<db>_restore_<id>_<run>` and leave them there for the operator to
   * copy back: the live database is never touched, so no approval is asked.
   */
  tables?: string[];
}

export interface RestoreDatabaseResult {
  outcome: 'restored' | 'rejected' | 'timed-out' | 'tables-restored';
  /** With `tables`: the database that holds them. */
  tablesDatabase?: string;
  cluster: string;
  database: string;
  backupId: string;
  decision?: ApprovalDecision;
  /** Where the previous live database is kept (after a restore). */
  previousDatabase?: string;
  restoreSeconds?: number;
  /**
   * Owners, privileges and database properties: how many objects were compared with the backup's
   * record, or that an older backup has none (then the database's own properties were not restored).
   */
  privileges?: string;
}

const quick = proxyActivities<Activities>(QUICK_ACTIVITY);
const long = proxyActivities<Activities>(LONG_ACTIVITY);

export async function restoreDatabase(input: RestoreDatabaseInput): Promise<RestoreDatabaseResult> {
  const step = trackProgress('plan');
  await selfLabels('restore', input);
  await long.fetchLogicalFromOffsite({ cluster: input.cluster, database: input.database, backupId: input.backupId });
  // The plan also checks that the cluster has every role the backup's owners and grants name.
  const chosen = await quick.planVerify({ cluster: input.cluster, database: input.database, backupId: input.backupId, pick: 'newest', restoreCluster: input.cluster });
  // Each run has its own names, so that restoring the same backup again never meets an earlier run's copies.
  const names: RestoreNames = patched('restore-run-names') ? restoreNames(input.database, chosen.backupId, workflowInfo().runId) : restoreNames(input.database, chosen.backupId);
  const plan: VerifyPlan & RestoreNames = { ...chosen, ...names, scratchDatabase: names.restoreDatabase, restoreCluster: input.cluster };
  const base = { cluster: input.cluster, database: input.database, backupId: plan.backupId };
  await long.checkIntegrity(base); // the backup is readable before anyone is asked

  if (input.tables?.length) {
    step('restore', `${input.tables.join(', ')} into ${names.restoreDatabase}`);
    try {
      const { restoreSeconds } = await long.restoreIntoScratch({ ...plan, tables: input.tables });
      step('done');
      return { ...base, outcome: 'tables-restored', tablesDatabase: names.restoreDatabase, restoreSeconds };
    } catch (err) {
      await CancellationScope.nonCancellable(() => quick.dropScratchDatabase(plan));
      throw err;
    }
  }

  const what = `restore ${input.cluster}/${input.database} from backup ${plan.backupId}; the live database is kept as ${names.preRestoreDatabase}.`;
  step('approve', `${what} Approve: pgwarden approve ${workflowInfo().workflowId} --approver NAME --reason TEXT`);
  await announceApproval(input.cluster, `A restore waits for approval: ${what}`);
  const decision = await waitForApproval(input.approvalTimeout ?? '24 hours');
  if (!decision) return { ...base, outcome: 'timed-out' };
  if (!decision.approved) return { ...base, outcome: 'rejected', decision };

  step('stop');
  await quick.runRestoreHook({ cluster: input.cluster, database: input.database, hook: 'preRestore' });
  let swapped = false;
  try {
    step('restore', names.restoreDatabase);
    const { restoreSeconds, databaseOid } = await long.restoreIntoScratch(plan);
    step('verify');
    const compared = await long.compareWithManifest(plan);
    step('swap');
    // The restored copy's OID lets a retried swap recognise its own finished work (an argument, not a command: no patch).
    const swap = await quick.swapDatabases({ ...plan, restoredOid: databaseOid });
    swapped = true;
    step('analyze');
    await long.analyzeDatabase({ cluster: input.cluster, database: input.database, reindex: input.reindex ?? false });
    step('start');
    await quick.runRestoreHook({ cluster: input.cluster, database: input.database, hook: 'postRestore' });
    step('done');
    // Runs from before swapDatabases reported it: always the kept name.
    const previousDatabase = swap ? swap.previousDatabase : names.preRestoreDatabase;
    return { ...base, outcome: 'restored', decision, ...(previousDatabase ? { previousDatabase } : {}), restoreSeconds, privileges: compared?.privileges };
  } catch (err) {
    await CancellationScope.nonCancellable(async () => {
      // Before the swap the live database was never touched: drop the half-made copy and start the
      // applications again on it.
      if (!swapped) await quick.dropScratchDatabase(plan);
      await quick.runRestoreHook({ cluster: input.cluster, database: input.database, hook: 'postRestore' }).catch(() => undefined);
    });
    throw err;
  }
}

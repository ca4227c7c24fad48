// restoreDatabase: the logical restore done safely (replaces restore-database.sh). Nothing is
// touched before an operator approves; the live database is renamed, never dropped.
// plan → approve → stop → restore → verify → swap → analyze → start
import { CancellationScope, isCancellation, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities, VerifyPlan } from '../activities/index.js';
import { LONG_ACTIVITY, QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { restoreNames, type RestoreNames } from '../lib/ids.js';
import { failureCause } from '../lib/runDetails.js';
import { clipText } from '../lib/runSummary.js';
import { announceApproval } from './approvalNotice.js';
import { showingFailure, showOutcome, trackProgress, waitForApproval, type ApprovalDecision } from './messages.js';
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

/** The run's current details end with its outcome, a failure included. */
export async function restoreDatabase(input: RestoreDatabaseInput): Promise<RestoreDatabaseResult> {
  return showingFailure(() => restore(input));
}

async function restore(input: RestoreDatabaseInput): Promise<RestoreDatabaseResult> {
  const step = trackProgress('plan');
  await selfLabels('restore', input);
  // Each activity carries a summary that reads like the runbook's step (shown in the UI's timeline).
  await long.fetchLogicalFromOffsite.executeWithOptions(
    { summary: `fetch ${input.database}'s backup from offsite if only offsite has it` },
    [{ cluster: input.cluster, database: input.database, backupId: input.backupId }],
  );
  // The plan also checks that the cluster has every role the backup's owners and grants name.
  const chosen = await quick.planVerify.executeWithOptions(
    { summary: `pick backup ${input.backupId ?? '(newest)'} of ${input.cluster}/${input.database}, check roles` },
    [
      {
        cluster: input.cluster,
        database: input.database,
        backupId: input.backupId,
        pick: 'newest',
        restoreCluster: input.cluster,
      },
    ],
  );
  // Each run has its own names, so that restoring the same backup again never meets an earlier run's copies.
  const names: RestoreNames = patched('restore-run-names')
    ? restoreNames(input.database, chosen.backupId, workflowInfo().runId)
    : restoreNames(input.database, chosen.backupId);
  const plan: VerifyPlan & RestoreNames = {
    ...chosen,
    ...names,
    scratchDatabase: names.restoreDatabase,
    restoreCluster: input.cluster,
  };
  const base = { cluster: input.cluster, database: input.database, backupId: plan.backupId };
  await long.checkIntegrity.executeWithOptions({ summary: `check backup ${plan.backupId} (sha256, decrypt)` }, [base]); // the backup is readable before anyone is asked

  if (input.tables?.length) {
    step('restore', `${input.tables.join(', ')} into ${names.restoreDatabase}`);
    try {
      const { restoreSeconds } = await long.restoreIntoScratch.executeWithOptions(
        { summary: clipText(`restore ${input.tables.join(', ')} into ${names.restoreDatabase} with pg_restore`) },
        [{ ...plan, tables: input.tables }],
      );
      step('done');
      showOutcome(`tables restored into ${names.restoreDatabase}`);
      return { ...base, outcome: 'tables-restored', tablesDatabase: names.restoreDatabase, restoreSeconds };
    } catch (err) {
      await CancellationScope.nonCancellable(() => quick.dropScratchDatabase(plan));
      throw err;
    }
  }

  const what = `restore ${input.cluster}/${input.database} from backup ${plan.backupId}; the live database is kept as ${names.preRestoreDatabase}.`;
  step('approve', `${what} Approve: pgwarden approve ${workflowInfo().workflowId} --approver NAME --reason TEXT`);
  await announceApproval(input.cluster, `A restore waits for approval: ${what}`);
  const decision = await waitForApproval(input.approvalTimeout ?? '24 hours', what);
  if (!decision) {
    showOutcome('timed out waiting for approval; nothing was touched');
    return { ...base, outcome: 'timed-out' };
  }
  if (!decision.approved) {
    showOutcome(`rejected by ${decision.approver}: ${decision.reason}; nothing was touched`);
    return { ...base, outcome: 'rejected', decision };
  }

  step('stop');
  await quick.runRestoreHook.executeWithOptions(
    { summary: `run the preRestore hook (stop the applications of ${input.database})` },
    [{ cluster: input.cluster, database: input.database, hook: 'preRestore' }],
  );
  let swapped = false;
  try {
    step('restore', names.restoreDatabase);
    const { restoreSeconds, databaseOid } = await long.restoreIntoScratch.executeWithOptions(
      { summary: `restore backup ${plan.backupId} into ${names.restoreDatabase} with pg_restore` },
      [plan],
    );
    step('verify');
    const compared = await long.compareWithManifest.executeWithOptions(
      { summary: `compare ${names.restoreDatabase}'s tables, rows and privileges with the manifest` },
      [plan],
    );
    step('swap');
    // The restored copy's OID lets a retried swap recognise its own finished work (an argument, not a command: no patch).
    const swap = await quick.swapDatabases.executeWithOptions(
      {
        summary: `rename ${input.database} to ${names.preRestoreDatabase}, ${names.restoreDatabase} to ${input.database}`,
      },
      [{ ...plan, restoredOid: databaseOid }],
    );
    swapped = true;
    step('analyze');
    await long.analyzeDatabase.executeWithOptions(
      { summary: `${input.reindex ? 'reindex and ' : ''}analyze ${input.database}` },
      [{ cluster: input.cluster, database: input.database, reindex: input.reindex ?? false }],
    );
    step('start');
    await quick.runRestoreHook.executeWithOptions(
      { summary: `run the postRestore hook (start the applications of ${input.database})` },
      [{ cluster: input.cluster, database: input.database, hook: 'postRestore' }],
    );
    step('done');
    // Runs from before swapDatabases reported it: always the kept name.
    const previousDatabase = swap ? swap.previousDatabase : names.preRestoreDatabase;
    showOutcome(
      `restored ${input.database} from backup ${plan.backupId}; the previous database is kept as ${previousDatabase ?? names.preRestoreDatabase}`,
    );
    return {
      ...base,
      outcome: 'restored',
      decision,
      ...(previousDatabase ? { previousDatabase } : {}),
      restoreSeconds,
      privileges: compared?.privileges,
    };
  } catch (err) {
    await CancellationScope.nonCancellable(async () => {
      // Before the swap the live database was never touched: drop the half-made copy and start the
      // applications again on it.
      if (!swapped)
        await quick.dropScratchDatabase.executeWithOptions(
          { summary: `drop the half-restored ${names.restoreDatabase}` },
          [plan],
        );
      await quick.runRestoreHook
        .executeWithOptions(
          { summary: `run the postRestore hook (start the applications of ${input.database} again)` },
          [{ cluster: input.cluster, database: input.database, hook: 'postRestore' }],
        )
        .catch(() => undefined);
    });
    if (!swapped && !isCancellation(err))
      showOutcome(`failed: ${failureCause(err)}; ${input.database} was not replaced`);
    throw err;
  }
}

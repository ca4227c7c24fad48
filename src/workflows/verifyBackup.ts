// verifyBackup: prove a backup restores. Replaces backup-verify.sh / test-restore.sh:
// plan → restore into pgwarden_verify_<id> (checksumming the dump on the way) → checksum of the
// other artifacts → compare with the manifest → record,
// and the temporary database is dropped on every path (success, failure, cancellation).
import {
  ApplicationFailure,
  CancellationScope,
  executeChild,
  patched,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, CompareResult, VerifyPlan } from '../activities/index.js';
import { LONG_ACTIVITY, QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { ErrorType } from '../lib/errorTypes.js';
import { verifyBackupWorkflowId } from '../lib/ids.js';
import { childLabels } from './childLabels.js';
import { eachInTurn } from './eachInTurn.js';
import { showingFailure, showOutcome, trackProgress } from './messages.js';
import { clipText, stepSummary } from '../lib/runSummary.js';
import { selfLabels } from './selfLabels.js';

export interface VerifyBackupInput {
  cluster: string;
  /** A database name, or "*": each database of the newest "*" backup run, as child workflows. */
  database: string;
  /** Default: the newest backup not verified yet (else the newest). Not with "*". */
  backupId?: string;
}

export interface VerifyBackupResult {
  cluster: string;
  database: string;
  backupId: string;
  ok: true;
  restoreSeconds: number;
  tables: number;
  rows: number;
  checks: CompareResult['checks'];
  /** With "*": each database's verification (the totals above add them up). */
  databases?: VerifyBackupResult[];
}

const quick = proxyActivities<Activities>(QUICK_ACTIVITY);
const long = proxyActivities<Activities>(LONG_ACTIVITY);

/** The run's current details end with its outcome: what restored and what it held, or why it failed. */
export async function verifyBackup(input: VerifyBackupInput): Promise<VerifyBackupResult> {
  return showingFailure(async () => {
    const r = await verify(input);
    const what = r.databases
      ? `${r.databases.length} databases of ${r.cluster} (${r.databases.map((d) => `${d.database} ${d.backupId}`).join(', ')})`
      : `backup ${r.backupId} of ${r.cluster}/${r.database}`;
    showOutcome(
      clipText(`verified ${what}: restored in ${Math.round(r.restoreSeconds)} s, ${r.tables} tables, ${r.rows} rows`),
    );
    return r;
  });
}

async function verify(input: VerifyBackupInput): Promise<VerifyBackupResult> {
  await selfLabels('verify', input);
  // Before, "*" went the single-database way and failed in plan: such histories replay unchanged.
  if (input.database === '*' && patched('verify-all-databases')) return verifyAllDatabases(input);
  const step = trackProgress('plan');

  // A new host with an empty disk: the backup comes from offsite, checked, into the local repository.
  const scope = `${input.cluster}/${input.database}`;
  await long.fetchLogicalFromOffsite.executeWithOptions(
    {
      summary: stepSummary(
        `fetch ${scope}'s backup ${input.backupId ?? '(newest)'} from offsite if only offsite has it`,
      ),
    },
    [input],
  );
  const plan: VerifyPlan = await quick.planVerify.executeWithOptions(
    { summary: stepSummary(`pick backup ${input.backupId ?? '(newest not verified)'} of ${scope} to verify`) },
    [input],
  );
  const target = { cluster: plan.cluster, database: plan.database, backupId: plan.backupId };
  const at = new Date(workflowInfo().startTime).toISOString();
  try {
    step('restore', plan.scratchDatabase);
    // The dump's checksum is taken while it is restored (one read of the file); the other
    // artifacts (globals) are checked on their own.
    const { restoreSeconds } = await long.restoreIntoScratch.executeWithOptions(
      {
        summary: stepSummary(
          `restore backup ${plan.backupId} into ${plan.scratchDatabase} with pg_restore, checksumming the dump`,
        ),
      },
      [plan],
    );
    step('checksum', plan.backupId);
    await long.checkIntegrity.executeWithOptions(
      { summary: stepSummary(`check backup ${plan.backupId}'s other artifacts (sha256, decrypt)`) },
      [{ ...target, skipRoles: ['dump'] }],
    );
    step('compare');
    const compared = await long.compareWithManifest.executeWithOptions(
      { summary: stepSummary(`compare ${plan.scratchDatabase}'s tables, rows and privileges with the manifest`) },
      [plan],
    );
    step('record');
    await quick.recordVerification.executeWithOptions(
      { summary: stepSummary(`record that backup ${plan.backupId} of ${scope} restored`) },
      [
        {
          ...target,
          verification: {
            at,
            ok: true,
            method: 'restore',
            restoreSeconds,
            detail: `${compared.tables} tables, ${compared.rows} rows; owners and privileges: ${compared.privileges}`,
          },
        },
      ],
    );
    step('done');
    return {
      ...target,
      ok: true,
      restoreSeconds,
      tables: compared.tables,
      rows: compared.rows,
      checks: compared.checks,
    };
  } catch (err) {
    // A failed verification is recorded too, unless the workflow was cancelled.
    if (!CancellationScope.current().consideredCancelled) {
      const detail =
        err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
      await quick.recordVerification
        .executeWithOptions(
          { summary: stepSummary(`record that backup ${plan.backupId} of ${scope} failed verification`) },
          [{ ...target, verification: { at, ok: false, method: 'restore', detail } }],
        )
        .catch(() => undefined);
    }
    throw err;
  } finally {
    await CancellationScope.nonCancellable(() =>
      quick.dropScratchDatabase.executeWithOptions({ summary: stepSummary(`drop ${plan.scratchDatabase}`) }, [plan]),
    );
  }
}

/**
 * verifyBackup "*": every database of the newest "*" backup run, one child verifyBackup at a time
 * (they share the verification cluster). A failed database does not stop the others; the run then
 * fails naming every failed database, its details listing what passed.
 */
async function verifyAllDatabases(input: VerifyBackupInput): Promise<VerifyBackupResult> {
  const step = trackProgress('plan');
  const { run, targets } = await quick.planVerifyAll.executeWithOptions(
    { summary: stepSummary(`list the databases of ${input.cluster}'s newest "*" backup run to verify`) },
    [{ cluster: input.cluster }],
  );
  let n = 0;
  const { done: verified, failed } = await eachInTurn(targets, (target) => {
    step('verify-databases', `${target.database} (${++n} of ${targets.length})`);
    return executeChild(verifyBackup, {
      workflowId: verifyBackupWorkflowId(input.cluster, target.database, target.backupId),
      ...childLabels({ cluster: input.cluster, database: target.database, kind: 'verify' }, { ...target }),
      args: [target],
    });
  });
  step('done');
  if (failed.length) {
    throw ApplicationFailure.nonRetryable(
      `${failed.length} of ${targets.length} databases failed verification: ${failed.map((f) => `${f.database} (${f.backupId}): ${f.error}`).join('; ')}`,
      ErrorType.VerificationFailed,
      {
        cluster: input.cluster,
        run,
        failed,
        verified: verified.map((v) => ({ database: v.database, backupId: v.backupId })),
      },
    );
  }
  const sum = (f: (v: VerifyBackupResult) => number) => verified.reduce((s, v) => s + f(v), 0);
  return {
    cluster: input.cluster,
    database: '*',
    backupId:
      run ??
      verified
        .map((v) => v.backupId)
        .sort()
        .at(-1)!,
    ok: true,
    restoreSeconds: sum((v) => v.restoreSeconds),
    tables: sum((v) => v.tables),
    rows: sum((v) => v.rows),
    checks: [],
    databases: verified,
  };
}

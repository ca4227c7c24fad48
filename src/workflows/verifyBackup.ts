// verifyBackup: prove a backup restores. Replaces backup-verify.sh / test-restore.sh:
// plan → restore into pgwarden_verify_<id> (checksumming the dump on the way) → checksum of the
// other artifacts → compare with the manifest → record,
// and the temporary database is dropped on every path (success, failure, cancellation).
import { CancellationScope, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities, CompareResult, VerifyPlan } from '../activities/index.js';
import { LONG_ACTIVITY, QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { trackProgress } from './messages.js';

export interface VerifyBackupInput {
  cluster: string;
  database: string;
  /** Default: the newest backup not verified yet (else the newest). */
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
}

const quick = proxyActivities<Activities>(QUICK_ACTIVITY);
const long = proxyActivities<Activities>(LONG_ACTIVITY);

export async function verifyBackup(input: VerifyBackupInput): Promise<VerifyBackupResult> {
  const step = trackProgress('plan');

  // A new host with an empty disk: the backup comes from offsite, checked, into the local repository.
  await long.fetchLogicalFromOffsite(input);
  const plan: VerifyPlan = await quick.planVerify(input);
  const target = { cluster: plan.cluster, database: plan.database, backupId: plan.backupId };
  const at = new Date(workflowInfo().startTime).toISOString();
  try {
    step('restore', plan.scratchDatabase);
    // The dump's checksum is taken while it is restored (one read of the file); the other
    // artifacts (globals) are checked on their own.
    const { restoreSeconds } = await long.restoreIntoScratch(plan);
    step('checksum', plan.backupId);
    await long.checkIntegrity({ ...target, skipRoles: ['dump'] });
    step('compare');
    const compared = await long.compareWithManifest(plan);
    step('record');
    await quick.recordVerification({ ...target, verification: { at, ok: true, method: 'restore', restoreSeconds, detail: `${compared.tables} tables, ${compared.rows} rows; owners and privileges: ${compared.privileges}` } });
    step('done');
    return { ...target, ok: true, restoreSeconds, tables: compared.tables, rows: compared.rows, checks: compared.checks };
  } catch (err) {
    // A failed verification is recorded too, unless the workflow was cancelled.
    if (!CancellationScope.current().consideredCancelled) {
      const detail = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
      await quick.recordVerification({ ...target, verification: { at, ok: false, method: 'restore', detail } }).catch(() => undefined);
    }
    throw err;
  } finally {
    await CancellationScope.nonCancellable(() => quick.dropScratchDatabase(plan));
  }
}

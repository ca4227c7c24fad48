// pointInTimeRecovery's rehearsal: a scratch copy staged and recovered beside the live cluster,
// asking nobody. WAL decoding starts with the base backup's unpacking, and replay as soon as the
// base is there (restore_command waits for segments not decoded yet).
import { CancellationScope, type ActivityInterfaceFor } from '@temporalio/workflow';
import type { Activities, RecoveryOutcome, RecoveryPlan } from '../activities/index.js';

export async function rehearse(
  host: ActivityInterfaceFor<Activities>,
  hostQuick: ActivityInterfaceFor<Activities>,
  plan: RecoveryPlan,
  cluster: string,
  onRecover: () => void,
): Promise<RecoveryOutcome> {
  const scope = new CancellationScope();
  try {
    return await scope.run(async () => {
      const staging = host.stageWal
        .executeWithOptions({ summary: `stage ${plan.walFiles.length} WAL files alongside` }, [plan])
        .catch(async (err: unknown) => {
          await CancellationScope.nonCancellable(() => hostQuick.abortWalStaging(plan));
          throw err;
        });
      staging.catch(() => undefined); // observed below; never an unhandled rejection meanwhile
      await host.stageBaseBackup.executeWithOptions(
        { summary: `stage base backup ${plan.backupId} into a scratch directory` },
        [plan],
      );
      onRecover();
      const [, outcome] = await Promise.all([
        staging,
        host.recover.executeWithOptions(
          { summary: `rehearse: recover a scratch copy of ${cluster} to ${plan.targetDescription}` },
          [plan],
        ),
      ]);
      return outcome;
    });
  } catch (err) {
    scope.cancel();
    throw err;
  }
}

// What point-in-time recovery does to a cluster's data directory: stage a base backup and its WAL
// beside it, stop the server, move the live directory aside (never delete it), recover, verify,
// and roll back to the moved-aside directory if anything after the swap fails. These activities
// run on the database host's own queue. Every one is safe to repeat: each checks what is done.
import { type PitrDeps, pitrContext } from './context.js';
import { createHostActivities } from './host.js';
import { createPlanActivities } from './plan.js';
import { createPreReplayActivities } from './preReplay.js';
import { createRecoverActivities } from './recover.js';
import { createRollbackActivities } from './rollback.js';
import { createStageActivities } from './stage.js';

export type { ArchiveWait, PreReplayOutcome, RecoveryMode, RecoveryOutcome, RecoveryPlan } from './types.js';

export function createClusterActivities(deps: PitrDeps) {
  const ctx = pitrContext(deps);
  const { planRecovery } = createPlanActivities(ctx);
  const { stageRecovery, stageBaseBackup, stageWal, abortWalStaging } = createStageActivities(ctx);
  const { archiveCurrentWal, stopCluster, gatherUnarchivedWal, swapDataDirectory } = createHostActivities(ctx);
  const { preReplay } = createPreReplayActivities(ctx);
  const { recover, verifyRecovery, cleanupRecovery } = createRecoverActivities(ctx);
  const { rollbackRecovery } = createRollbackActivities(ctx);
  return {
    planRecovery,
    stageRecovery,
    stageBaseBackup,
    stageWal,
    abortWalStaging,
    archiveCurrentWal,
    stopCluster,
    gatherUnarchivedWal,
    swapDataDirectory,
    preReplay,
    recover,
    verifyRecovery,
    cleanupRecovery,
    rollbackRecovery,
  };
}

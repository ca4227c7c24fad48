// createStandby's activities: a streaming standby built from the repository's newest base backup on
// the standby's host, without a fresh pg_basebackup from the primary. PITR's staging, swap and
// server helpers do the data directory's part (pitr/stage.ts, pitr/host.ts, pitr/server.ts).
import { type PitrDeps, pitrContext } from '../pitr/context.js';
import { createHostActivities } from '../pitr/host.js';
import { createStageActivities } from '../pitr/stage.js';
import { createStandbyBuildActivities } from './build.js';
import { createPromotionActivities } from './promote.js';
import { createStandbyStreamActivities } from './stream.js';
import type { StandbyPlan } from './types.js';

export type { StandbyPlan, StandbyStreaming } from './types.js';
export type { PromotionWatch, Promoted } from './promote.js';

export function createStandbyActivities(deps: PitrDeps) {
  const ctx = pitrContext(deps);
  const { stageBaseBackup } = createStageActivities(ctx);
  const { swapDataDirectory } = createHostActivities(ctx);
  const { checkStandbyTarget, ...build } = createStandbyBuildActivities(ctx);
  return {
    ...build,
    ...createStandbyStreamActivities(ctx),
    ...createPromotionActivities(ctx),
    /**
     * The target checked (no server runs there; what it holds decides the approval), then the base
     * backup unpacked beside it (PITR's staging, checksums verified; a staged one is kept on retry).
     */
    async stageStandby(plan: StandbyPlan) {
      const { dataDirectory } = await checkStandbyTarget(plan);
      const { bytes } = await stageBaseBackup(plan);
      return { bytes, dataDirectory };
    },
    /** The staged copy takes the data directory's place; one that was not empty is moved aside (PITR's swap). */
    swapStandbyDirectory: (plan: StandbyPlan) => swapDataDirectory(plan),
  };
}

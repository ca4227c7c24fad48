// What the approval of an in-place PITR says about the replay that ran before it, and how long the
// cluster will be down: the stop, what is left to replay at the rate just measured, start and promote.
import type { PreReplayOutcome } from '../activities/pitr/types.js';

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
/** PostgreSQL's promotion (the end-of-recovery checkpoint of a small cluster), allowed for, not measured. */
const PROMOTE_SECONDS = 1;

/** Seconds the cluster is expected to be down after the approval (at least 1). */
export function expectedDowntime(pre: PreReplayOutcome): number {
  const replay = pre.remainingBytes / Math.max(pre.bytesPerSecond, 1);
  return Math.max(1, Math.round(pre.stopSeconds + replay + pre.startSeconds + PROMOTE_SECONDS));
}

/** One sentence for the approval message and the progress detail. */
export function preReplaySentence(pre: PreReplayOutcome, cluster: string): string {
  const where = pre.stoppedAt ?? `the end of the staged WAL (${pre.reachedLsn})`;
  const later = pre.standby ? ', plus the WAL written since it was staged' : '';
  return (
    `Replayed already, while ${cluster} kept running: ${mb(pre.replayedBytes)} of WAL from ${pre.redoStart} to ${where} ` +
    `in ${pre.seconds.toFixed(1)} s (${mb(pre.bytesPerSecond)}/s). ` +
    `${cluster} will be down about ${expectedDowntime(pre)} s after the approval: the stop, ` +
    `replay of the ${mb(pre.remainingBytes)} from the restartpoint at ${pre.restartLsn}${later}, start and promotion.`
  );
}

// What the approval of an in-place PITR says about the replay that ran before it, and how long the
// cluster will be down: what is left to replay at the rate just measured, the start and the
// promotion, plus what is not measured before the approval: stopping the live cluster (its hook,
// its shutdown checkpoint, for `latest` the wait for the archive), the swap and the verify step.
import type { PreReplayOutcome } from '../activities/pitr/types.js';

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
/** PostgreSQL's promotion (the end-of-recovery checkpoint of a small cluster), allowed for, not measured. */
const PROMOTE_SECONDS = 1;

/**
 * Seconds of replay, start and promotion after the approval (at least 1); undefined when WAL is
 * left to replay and no rate was measured. The stop of the live cluster is not in it.
 */
export function expectedDowntime(pre: PreReplayOutcome): number | undefined {
  const rate = pre.bytesPerSecond;
  if (pre.remainingBytes > 0 && !(Number.isFinite(rate) && rate > 0)) return undefined;
  const replay = pre.remainingBytes > 0 ? pre.remainingBytes / rate : 0;
  return Math.max(1, Math.round(replay + pre.startSeconds + PROMOTE_SECONDS));
}

/** One sentence for the approval message and the progress detail. */
export function preReplaySentence(pre: PreReplayOutcome, cluster: string): string {
  const where = pre.stoppedAt ?? `the end of the staged WAL (${pre.reachedLsn})`;
  const later = pre.standby ? ', plus the WAL written since it was staged' : '';
  const rate =
    pre.bytesPerSecond > 0 && Number.isFinite(pre.bytesPerSecond) ? `${mb(pre.bytesPerSecond)}/s` : 'rate unknown';
  const downtime = expectedDowntime(pre);
  const wait =
    pre.standby && pre.archiveWaitSeconds !== undefined
      ? `, the wait for the archive ≤ ${pre.archiveWaitSeconds} s`
      : '';
  return (
    `Replayed already, while ${cluster} kept running: ${mb(pre.replayedBytes)} of WAL from ${pre.redoStart} to ${where} ` +
    `in ${pre.seconds.toFixed(1)} s (${rate}). ` +
    `${cluster} will be down ${downtime === undefined ? 'for an unknown time (no replay rate measured)' : `about ${downtime} s`} after the approval ` +
    `for replay (the ${mb(pre.remainingBytes)} from the restartpoint at ${pre.restartLsn}${later}), start and promotion, ` +
    `plus stopping ${cluster} (its preRestore hook, its shutdown checkpoint${wait}), the swap and the checks.`
  );
}

// WAL retention as a pure function: which archived WAL files no retained base backup can need.
// Recovery from a base backup replays from its startLsn onwards, so every segment from the oldest
// backup's start segment to the newest WAL stays — deleting only below that point can never open a
// gap between a kept backup and the end of the archive. Segment numbers are global across
// timelines (a child timeline continues its parent's LSNs), so the cut applies on every timeline.
import { BACKUP_LABEL_NAME, parseLsn, parseSegmentName, segmentName, segmentOf } from './wal.js';

export interface RetainedBaseBackup {
  backupId: string;
  timeline: number;
  startLsn: string;
}

export interface WalRetentionDecision {
  /** The oldest base backup and its start segment (its timeline's name): nothing from here on is deleted. */
  keepFrom?: { backupId: string; segment: string };
  /** Files that may go, oldest first, each with the reason. */
  delete: { name: string; reason: string }[];
  keep: string[];
}

export function planWalRetention(walFiles: readonly string[], backups: readonly RetainedBaseBackup[]): WalRetentionDecision {
  const names = [...walFiles].sort();
  // The oldest backup by position in the WAL, not by id: ids are start times from clocks.
  let oldest: { backup: RetainedBaseBackup; segment: bigint } | undefined;
  for (const backup of backups) {
    const segment = segmentOf(parseLsn(backup.startLsn));
    if (!oldest || segment < oldest.segment) oldest = { backup, segment };
  }
  if (!oldest) return { delete: [], keep: names };

  const boundary = segmentName(oldest.backup.timeline, oldest.segment);
  const keepFrom = { backupId: oldest.backup.backupId, segment: boundary };
  const decision: WalRetentionDecision = { keepFrom, delete: [], keep: [] };
  for (const name of names) {
    const segment = segmentNumberOf(name);
    if (segment !== undefined && segment < oldest.segment) {
      decision.delete.push({ name, reason: `before ${boundary}, the start of the oldest base backup ${keepFrom.backupId}` });
    } else {
      decision.keep.push(name);
    }
  }
  return decision;
}

/**
 * The segment number of a segment file or a backup label file (`<segment>.<offset>.backup`, which
 * names the segment its backup started in). History and partial files have none: they are kept.
 */
function segmentNumberOf(name: string): bigint | undefined {
  if (BACKUP_LABEL_NAME.test(name)) return parseSegmentName(name.slice(0, 24))?.segment;
  return parseSegmentName(name)?.segment;
}

// PITR's plan step as a pure function: given the base backups and the WAL archive's contents, pick
// the base backup for a target and list every WAL file recovery will read — or refuse the target
// with a reason an operator can act on. Nothing here touches a cluster.
import { ErrorType, nonRetryable } from './errors.js';
import { describeTarget, validateTarget, type RecoveryTarget } from './recovery.js';
import {
  historyFileName,
  parseLsn,
  parseSegmentName,
  segmentName,
  segmentOf,
  timelineAt,
  timelinePath,
  WAL_SEGMENT_BYTES,
  type TimelineSwitch,
} from './wal.js';

export interface BackupSummary {
  backupId: string;
  timeline: number;
  startLsn: string;
  stopLsn: string;
  finishedAt: string;
}

export interface ArchivedWal {
  name: string;
  archivedAt: string;
}

export interface RecoveryPath {
  backup: BackupSummary;
  targetTimeline: number;
  /** Segment and history files recovery reads, in replay order (history files first). */
  walFiles: string[];
  /** The last segment the plan proved present. */
  lastSegment: string;
  /** Segments after it, contiguous on the path: recovery may need them to see the first commit past the target. */
  followingWalFiles: string[];
}

/**
 * The base backup a target needs: the newest one that ends before the target on the path of the
 * target timeline: the live cluster's own when the archive knows it, else the newest timeline the
 * backups, the WAL names and the history files know. Undefined when none does; plan and the offsite
 * fetch both ask.
 */
export function chooseBaseBackup<B extends BackupSummary>(input: {
  target: RecoveryTarget;
  backups: B[];
  walNames: string[];
  histories: Map<number, TimelineSwitch[]>;
  now: Date;
  /**
   * The timeline the live cluster runs on, when it runs. Recovery follows that cluster's own history,
   * never a newer branch an earlier, rolled-back recovery left in the archive (its promoted server
   * archived a history file and segments, and the cluster went on on its old timeline). Ignored when
   * the archive does not know it (its history file not archived yet).
   */
  liveTimeline?: number;
}): { backup?: B; targetTime?: Date; targetTimeline: number; path: ReturnType<typeof timelinePath>; onPath: B[] } {
  const targetTime = validateTarget(input.target, input.now);
  const timelines = [
    ...input.histories.keys(),
    ...input.walNames.map((n) => parseSegmentName(n)?.timeline ?? 0),
    ...input.backups.map((b) => b.timeline),
  ].filter((t) => t > 0);
  if (timelines.length === 0) throw nonRetryable(ErrorType.NoBackup, 'there is no base backup of this cluster');
  const live = input.liveTimeline;
  const known = live !== undefined && (live === 1 || input.histories.has(live));
  const targetTimeline = known ? live : Math.max(...timelines);
  const path = timelinePath(targetTimeline, input.histories.get(targetTimeline) ?? []);
  // A backup is usable when the WAL it needs, [startLsn, stopLsn), lies on its timeline's part of the
  // path: the byte before stopLsn decides (PostgreSQL checks minRecoveryPoint - 1 the same way), so a
  // backup whose stop LSN is exactly a switch point still counts for the child timeline.
  const onPath = input.backups.filter((b) => timelineAt(path, parseLsn(b.stopLsn) - 1n) === b.timeline);
  const before = onPath.filter((b) => {
    if ('time' in input.target) return new Date(b.finishedAt).getTime() <= targetTime!.getTime();
    if ('lsn' in input.target) return parseLsn(b.stopLsn) <= parseLsn(input.target.lsn);
    return true;
  });
  const backup = [...before].sort((a, b) => a.backupId.localeCompare(b.backupId)).at(-1);
  return { backup, targetTime, targetTimeline, path, onPath };
}

/**
 * Picks the newest base backup that ends before the target on the target's timeline path, and the
 * WAL files from its start up to the target, each proven present in the archive.
 */
export function planRecoveryPath(input: {
  target: RecoveryTarget;
  backups: BackupSummary[];
  wal: ArchivedWal[];
  histories: Map<number, TimelineSwitch[]>;
  now: Date;
  /** The live cluster's timeline, when it runs (see chooseBaseBackup). */
  liveTimeline?: number;
  /**
   * Time and LSN targets: an archive that ends before the target is not refused here; the WAL's
   * content decides (what was archived when says nothing about what a segment holds).
   */
  openEnded?: boolean;
}): RecoveryPath {
  const archived = new Map(input.wal.map((w) => [w.name, w]));
  const segments = input.wal.map((w) => ({ ...w, parsed: parseSegmentName(w.name) })).filter((w) => w.parsed);
  const { backup, targetTime, targetTimeline, path, onPath } = chooseBaseBackup({
    ...input,
    walNames: input.wal.map((w) => w.name),
  });
  if (!backup) {
    const oldest = onPath.sort((a, b) => a.backupId.localeCompare(b.backupId))[0];
    throw nonRetryable(
      ErrorType.BadTarget,
      oldest
        ? `${describeTarget(input.target)} is before the oldest usable base backup (${oldest.backupId}, finished ${oldest.finishedAt}, stop LSN ${oldest.stopLsn})`
        : `no base backup lies on timeline ${targetTimeline}'s history; take one with \`pgwarden base-backup\``,
    );
  }

  const walFiles: string[] = path.map((p) => historyFileName(p.timeline)).filter((h) => archived.has(h));
  if (targetTimeline > 1 && !archived.has(historyFileName(targetTimeline))) {
    throw nonRetryable(
      ErrorType.WalGap,
      `timeline ${targetTimeline}'s history file ${historyFileName(targetTimeline)} is missing from the archive`,
    );
  }
  const first = segmentOf(parseLsn(backup.startLsn));
  // The segment holding the byte before stopLsn: a standby's backup may stop exactly on a segment
  // boundary (PostgreSQL's XLByteToPrevSeg), and then needs nothing of the segment starting there.
  const mustReach = segmentOf(parseLsn(backup.stopLsn) - 1n);
  const needed = (segno: bigint) => {
    const start = segno * BigInt(WAL_SEGMENT_BYTES);
    let tli = timelineAt(path, start);
    for (const p of path)
      if (p.from < start + BigInt(WAL_SEGMENT_BYTES) && (p.to === undefined || p.to > start)) tli = p.timeline;
    return segmentName(tli, segno);
  };
  // The newest segment on the target timeline's path. Segments off the path (a parent's abandoned
  // branch after its switch point, a sibling timeline) are never replayed, so they prove no gap.
  const lastInArchive = segments.reduce(
    (max, s) => (s.parsed!.segment > max && needed(s.parsed!.segment) === s.name ? s.parsed!.segment : max),
    -1n,
  );

  let last: string | undefined;
  for (let segno = first; ; segno++) {
    const name = needed(segno);
    const found = archived.get(name);
    if (!found) {
      const reached = segno > mustReach;
      if ('latest' in input.target || 'name' in input.target) {
        if (!reached) throw gap(name, backup);
        if (lastInArchive > segno) throw gap(name, backup, 'newer WAL exists beyond it, so "latest" would stop short');
        break;
      }
      if (input.openEnded && ('time' in input.target || 'lsn' in input.target) && reached && !(lastInArchive > segno))
        break;
      // Past the backup's consistency point, before a newer backup's start: WAL retention let this
      // go (the target is older than the PITR window), not a lost segment.
      if (reached && lastInArchive > segno) {
        let next = segno + 1n;
        while (!archived.has(needed(next))) next++;
        const outside = outsideWindow(input.target, backup, next, onPath);
        if (outside) throw outside;
      }
      if ('time' in input.target) {
        if (!reached || lastInArchive > segno) throw gap(name, backup);
        throw nonRetryable(
          ErrorType.BadTarget,
          `the WAL archive ends at ${last ?? 'the base backup'} (archived ${last ? archived.get(last)!.archivedAt : '-'}), before ${describeTarget(input.target)}; newer WAL is not archived yet (SELECT pg_switch_wal() on the server)`,
        );
      }
      throw gap(name, backup);
    }
    walFiles.push(name);
    last = name;
    if (segno < mustReach) continue;
    if ('lsn' in input.target && segno >= segmentOf(parseLsn(input.target.lsn))) break;
    // A segment archived at or after the target time holds the records up to it.
    if ('time' in input.target && new Date(found.archivedAt).getTime() >= targetTime!.getTime()) break;
  }
  // Recovery stops at the first commit *after* a time target (or past an LSN), which may lie in a
  // later segment: the contiguous WAL after the proven part goes along too.
  const followingWalFiles: string[] = [];
  for (let segno = parseSegmentName(last!)!.segment + 1n; ; segno++) {
    const name = needed(segno);
    if (!archived.has(name)) break;
    followingWalFiles.push(name);
  }
  return { backup, targetTimeline, walFiles, followingWalFiles, lastSegment: last! };
}

/**
 * A target between an old base backup's consistency point and the continuous WAL of the PITR
 * window, as WAL retention leaves it: the old backup's WAL ends at its stop segment and the archive
 * resumes exactly at a newer backup's start segment (`resumes`). A hole that ends anywhere else is a
 * lost segment (WalGap).
 */
function outsideWindow(
  target: RecoveryTarget,
  backup: BackupSummary,
  resumes: bigint,
  onPath: readonly BackupSummary[],
) {
  const newer = onPath.find((b) => segmentOf(parseLsn(b.startLsn)) === resumes);
  if (!newer) return undefined;
  return nonRetryable(
    ErrorType.BadTarget,
    `${describeTarget(target)} is outside the PITR window (continuous WAL from base backup ${newer.backupId}: targets from ${newer.finishedAt}, stop LSN ${newer.stopLsn}); ` +
      `base backup ${backup.backupId} is restorable to its consistency point ${backup.finishedAt} (stop LSN ${backup.stopLsn}) only`,
  );
}

function gap(missing: string, backup: BackupSummary, extra?: string) {
  return nonRetryable(
    ErrorType.WalGap,
    `WAL segment ${missing} is missing from the archive: replay from base backup ${backup.backupId} cannot pass it${extra ? ` (${extra})` : ''}`,
  );
}

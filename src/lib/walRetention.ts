// WAL retention as a pure function: which archived WAL files no retained base backup can need.
//
// Without a window (the remote's own retention): every segment from the oldest backup's start
// segment to the newest WAL stays — deleting only below that point can never open a gap between a
// kept backup and the end of the archive.
//
// With a PITR window (local retention, `walRetention.window`), as pgBackRest's archive retention:
// WAL is kept continuously from the start of the window's base backup (the newest one that ended at
// or before the window's start, so every moment inside the window is recoverable; the oldest backup
// while none is that old) to the end of the archive. Each older kept base backup keeps only its own
// start → stop segments (what makes it consistent, with its `.backup` label): it stays restorable to
// its consistency point. History files are always kept.
//
// Segment numbers are global across timelines (a child timeline continues its parent's LSNs), so
// the cuts apply on every timeline: a range keeps its segment numbers whatever the timeline, which
// is never less than what recovery of the backup on its own timeline path reads.
import { BACKUP_LABEL_NAME, parseLsn, parseSegmentName, segmentName, segmentOf } from './wal.js';

export interface RetainedBaseBackup {
  backupId: string;
  timeline: number;
  startLsn: string;
  /** Where the backup is consistent; without it (and finishedAt) the backup keeps continuous WAL. */
  stopLsn?: string;
  finishedAt?: string;
}

export interface WalRetentionDecision {
  /** The base backup the continuous WAL starts from, and its start segment: nothing from here on is deleted. */
  keepFrom?: { backupId: string; segment: string };
  /** Older kept base backups and the segments kept for each (start → stop), oldest first. */
  ranges?: { backupId: string; from: string; to: string }[];
  /** Files that may go, oldest first, each with the reason. */
  delete: { name: string; reason: string }[];
  keep: string[];
}

/** The default PITR window: two weekly base backups' worth. */
export const DEFAULT_WAL_WINDOW = '14 days';

/** `"14 days"`, `"36 hours"`, `"1 day"` in milliseconds; undefined when not such a duration. */
export function parseWindow(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(d|days?|h|hours?)\s*$/i.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  if (!(n > 0)) return undefined;
  return n * (m[2]!.toLowerCase().startsWith('d') ? 86_400_000 : 3_600_000);
}

/**
 * The base backup the PITR window's continuous WAL starts from: the newest one that ended at or
 * before `now - window` (so a target at the window's start has a backup before it), else the
 * oldest (none is that old yet). Base retention keeps it (`pitr-window`).
 */
export function windowAnchor<B extends { backupId: string; startLsn: string; finishedAt?: string }>(backups: readonly B[], windowMs: number, now: Date): B | undefined {
  const start = now.getTime() - windowMs;
  const ended = backups.filter((b) => b.finishedAt !== undefined && new Date(b.finishedAt).getTime() <= start);
  const byStart = (a: B, b: B) => (segmentOf(parseLsn(a.startLsn)) < segmentOf(parseLsn(b.startLsn)) ? -1 : 1);
  if (ended.length > 0) return [...ended].sort((a, b) => new Date(a.finishedAt!).getTime() - new Date(b.finishedAt!).getTime() || byStart(a, b)).at(-1);
  return [...backups].sort(byStart)[0];
}

export function planWalRetention(
  walFiles: readonly string[],
  backups: readonly RetainedBaseBackup[],
  window?: { ms: number; now: Date },
): WalRetentionDecision {
  const names = [...walFiles].sort();
  if (backups.length === 0) return { delete: [], keep: names };
  // The continuous WAL's start, by position in the WAL, not by id: ids are start times from clocks.
  let from: { backup: RetainedBaseBackup; segment: bigint } | undefined;
  const consider = (backup: RetainedBaseBackup) => {
    const segment = segmentOf(parseLsn(backup.startLsn));
    if (!from || segment < from.segment) from = { backup, segment };
  };
  if (window) {
    consider(windowAnchor(backups, window.ms, window.now)!);
    // A backup that does not say where it is consistent keeps everything after its start.
    backups.filter((b) => !b.stopLsn).forEach(consider);
  } else {
    backups.forEach(consider);
  }
  const continuous = from!;
  const boundary = segmentName(continuous.backup.timeline, continuous.segment);
  const keepFrom = { backupId: continuous.backup.backupId, segment: boundary };
  const ranges = backups
    .filter((b) => b.stopLsn && segmentOf(parseLsn(b.startLsn)) < continuous.segment)
    .map((b) => ({ backup: b, from: segmentOf(parseLsn(b.startLsn)), to: segmentOf(parseLsn(b.stopLsn!)) }))
    .sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
  const decision: WalRetentionDecision = { keepFrom, delete: [], keep: [] };
  if (window) decision.ranges = ranges.map((r) => ({ backupId: r.backup.backupId, from: segmentName(r.backup.timeline, r.from), to: segmentName(r.backup.timeline, r.to) }));
  const what = window ? `the start of the PITR window (base backup ${keepFrom.backupId})` : `the start of the oldest base backup ${keepFrom.backupId}`;
  const older = window && ranges.length > 0 ? ', outside every older base backup\'s start → stop range' : '';
  for (const name of names) {
    const segment = segmentNumberOf(name);
    const inRange = segment !== undefined && ranges.some((r) => segment >= r.from && segment <= r.to);
    if (segment !== undefined && segment < continuous.segment && !inRange) {
      decision.delete.push({ name, reason: `before ${boundary}, ${what}${older}` });
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
export function segmentNumberOf(name: string): bigint | undefined {
  if (BACKUP_LABEL_NAME.test(name)) return parseSegmentName(name.slice(0, 24))?.segment;
  return parseSegmentName(name)?.segment;
}

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
//
// A PITR to an older point starts a timeline at a LOWER position than the anchor: the anchor is not
// on the new timeline's path, and its moments replay from an older backup. So the continuous WAL
// starts at the lowest of: the anchor's start; the start of every base backup that finished after
// the anchor (a backup on such a timeline); and, for every timeline whose history file was archived
// after the anchor finished, the start of the newest kept base backup on its path that ends at or
// before its switch point (recovery of its first moments replays from there, across the switch).
// Each of these is newer than the anchor, which moves on with the window: the extra WAL is kept only
// until a backup that finished after the switch is older than the window.
import {
  BACKUP_LABEL_NAME,
  parseLsn,
  parseSegmentName,
  segmentName,
  segmentOf,
  timelineAt,
  timelinePath,
  type TimelineSwitch,
} from './wal.js';

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

/** A timeline from its archived history file. */
export interface TimelineOrigin {
  timeline: number;
  /**
   * Its parsed history (`<tli>.history`): the last entry is where it branched off its parent.
   * Unknown (encrypted, and this host has no private key): its lowest archived segment stands for
   * the switch point and the oldest kept backup ending before it for the one on its path.
   */
  history?: TimelineSwitch[];
  /** When the history file was archived; unknown counts as after the anchor (keeps more). */
  archivedAt?: string;
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

const byStart = (a: { startLsn: string }, b: { startLsn: string }) =>
  segmentOf(parseLsn(a.startLsn)) < segmentOf(parseLsn(b.startLsn)) ? -1 : 1;

/**
 * The base backup the PITR window's continuous WAL starts from: the newest one that ended at or
 * before `now - window` (so a target at the window's start has a backup before it), else the
 * oldest (none is that old yet). Base retention keeps it (`pitr-window`).
 */
export function windowAnchor<B extends { backupId: string; startLsn: string; finishedAt?: string }>(
  backups: readonly B[],
  windowMs: number,
  now: Date,
): B | undefined {
  const start = now.getTime() - windowMs;
  const ended = backups.filter((b) => b.finishedAt !== undefined && new Date(b.finishedAt).getTime() <= start);
  if (ended.length > 0)
    return [...ended]
      .sort((a, b) => new Date(a.finishedAt!).getTime() - new Date(b.finishedAt!).getTime() || byStart(a, b))
      .at(-1);
  return [...backups].sort(byStart)[0];
}

export function planWalRetention(
  walFiles: readonly string[],
  backups: readonly RetainedBaseBackup[],
  /** `timelines`: the archive's timelines with a history file (see the header: PITR to an older point). */
  window?: { ms: number; now: Date; timelines?: readonly TimelineOrigin[] },
): WalRetentionDecision {
  const names = [...walFiles].sort();
  if (backups.length === 0) return { delete: [], keep: names };
  // The continuous WAL's start, by position in the WAL, not by id: ids are start times from clocks.
  let from: { backup: RetainedBaseBackup; segment: bigint; why?: string } | undefined;
  const consider = (backup: RetainedBaseBackup, why?: string) => {
    const segment = segmentOf(parseLsn(backup.startLsn));
    if (!from || segment < from.segment) from = { backup, segment, why };
  };
  if (window) {
    const anchor = windowAnchor(backups, window.ms, window.now)!;
    consider(anchor);
    // A backup that does not say where it is consistent keeps everything after its start.
    backups.filter((b) => !b.stopLsn).forEach((b) => consider(b));
    const anchorEnd = anchor.finishedAt === undefined ? undefined : new Date(anchor.finishedAt).getTime();
    const afterAnchor = (at?: string) =>
      anchorEnd === undefined || at === undefined || new Date(at).getTime() > anchorEnd;
    for (const b of backups)
      if (b !== anchor && afterAnchor(b.finishedAt))
        consider(b, `base backup ${b.backupId}, newer than the window's start`);
    const byStop = (a: RetainedBaseBackup, b: RetainedBaseBackup) =>
      parseLsn(a.stopLsn!) < parseLsn(b.stopLsn!) ? -1 : 1;
    for (const t of window.timelines ?? []) {
      if (!afterAnchor(t.archivedAt)) continue;
      // Without a kept backup before the switch, the timeline's moments before its own first backup
      // restore from nothing: its backups (finished after the anchor) keep what they need above.
      const branch = t.history?.at(-1);
      if (t.history && branch) {
        const path = timelinePath(t.timeline, t.history);
        const before = backups
          .filter(
            (b) =>
              b.stopLsn &&
              parseLsn(b.stopLsn) <= branch.switchpoint &&
              timelineAt(path, parseLsn(b.stopLsn) - 1n) === b.timeline,
          )
          .sort(byStop)
          .at(-1);
        if (before)
          consider(
            before,
            `base backup ${before.backupId}, the newest before timeline ${t.timeline} branched off inside the PITR window`,
          );
      } else if (!t.history) {
        const first = names
          .map(parseSegmentName)
          .reduce<bigint | undefined>(
            (min, p) => (p?.timeline === t.timeline && (min === undefined || p.segment < min) ? p.segment : min),
            undefined,
          );
        const before = backups
          .filter((b) => b.stopLsn && (first === undefined || segmentOf(parseLsn(b.stopLsn)) <= first))
          .sort(byStart)[0];
        if (before)
          consider(
            before,
            `base backup ${before.backupId}, before timeline ${t.timeline} branched off inside the PITR window (its history unread)`,
          );
      }
    }
  } else {
    backups.forEach((b) => consider(b));
  }
  const continuous = from!;
  const boundary = segmentName(continuous.backup.timeline, continuous.segment);
  const keepFrom = { backupId: continuous.backup.backupId, segment: boundary };
  const ranges = backups
    .filter((b) => b.stopLsn && segmentOf(parseLsn(b.startLsn)) < continuous.segment)
    .map((b) => ({ backup: b, from: segmentOf(parseLsn(b.startLsn)), to: segmentOf(parseLsn(b.stopLsn!)) }))
    .sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
  const decision: WalRetentionDecision = { keepFrom, delete: [], keep: [] };
  if (window)
    decision.ranges = ranges.map((r) => ({
      backupId: r.backup.backupId,
      from: segmentName(r.backup.timeline, r.from),
      to: segmentName(r.backup.timeline, r.to),
    }));
  const what = !window
    ? `the start of the oldest base backup ${keepFrom.backupId}`
    : continuous.why
      ? `the start of ${continuous.why}`
      : `the start of the PITR window (base backup ${keepFrom.backupId})`;
  const older = window && ranges.length > 0 ? ", outside every older base backup's start → stop range" : '';
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

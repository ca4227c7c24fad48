// PITR's plan step as a pure function: given the base backups and the WAL archive's contents, pick
// the base backup for a target and list every WAL file recovery will read — or refuse the target
// with a reason an operator can act on. Nothing here touches a cluster.
import { ErrorType, nonRetryable } from './errors.js';
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

export type RecoveryTarget = { time: string } | { lsn: string } | { name: string } | { latest: true };

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

export function describeTarget(target: RecoveryTarget): string {
  if ('time' in target) return `time ${target.time}`;
  if ('lsn' in target) return `LSN ${target.lsn}`;
  if ('name' in target) return `restore point "${target.name}"`;
  return 'the end of the archive (latest)';
}

/** Checks the target's shape; returns the time as a Date for time targets. */
export function validateTarget(target: RecoveryTarget, now: Date): Date | undefined {
  const bad = (why: string) => nonRetryable(ErrorType.BadTarget, why);
  if (!target || typeof target !== 'object') throw bad('target must be one of {"time"}, {"lsn"}, {"name"}, {"latest": true}');
  const keys = Object.keys(target);
  if (keys.length !== 1) throw bad(`target must have exactly one of time, lsn, name, latest (got ${keys.join(', ') || 'none'})`);
  if ('time' in target) {
    // An explicit zone: a bare "14:31" means different instants on the worker and the operator's laptop.
    if (!/(Z|[+-]\d{2}(:?\d{2})?)$/i.test(target.time.trim())) throw bad(`target time "${target.time}" has no time zone (write e.g. 2026-11-22 14:31:00+00)`);
    const t = new Date(target.time.trim().replace(' ', 'T').replace(/([+-]\d{2})$/, '$1:00'));
    if (Number.isNaN(t.getTime())) throw bad(`target time "${target.time}" is not a time`);
    if (t.getTime() > now.getTime()) throw bad(`target time ${t.toISOString()} is in the future`);
    return t;
  }
  if ('lsn' in target) {
    try {
      parseLsn(target.lsn);
    } catch {
      throw bad(`target LSN "${target.lsn}" is not an LSN (like 0/3000060)`);
    }
    return undefined;
  }
  if ('name' in target) {
    if (!target.name || target.name.length > 63) throw bad('restore point name must be 1 to 63 characters');
    return undefined;
  }
  if ((target as { latest?: unknown }).latest !== true) throw bad('target "latest" must be true');
  return undefined;
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
}): RecoveryPath {
  const targetTime = validateTarget(input.target, input.now);
  const archived = new Map(input.wal.map((w) => [w.name, w]));
  const segments = input.wal.map((w) => ({ ...w, parsed: parseSegmentName(w.name) })).filter((w) => w.parsed);

  // recovery_target_timeline = 'latest': the newest timeline the archive knows.
  const timelines = [...input.histories.keys(), ...segments.map((s) => s.parsed!.timeline), ...input.backups.map((b) => b.timeline)];
  if (timelines.length === 0) throw nonRetryable(ErrorType.NoBackup, 'there is no base backup of this cluster');
  const targetTimeline = Math.max(...timelines);
  const history = input.histories.get(targetTimeline) ?? [];
  const path = timelinePath(targetTimeline, history);

  // A backup is usable when the WAL it needs, [startLsn, stopLsn), lies on its timeline's part of the
  // path: the byte before stopLsn decides (PostgreSQL checks minRecoveryPoint - 1 the same way), so a
  // backup whose stop LSN is exactly a switch point still counts for the child timeline.
  const onPath = input.backups.filter((b) => timelineAt(path, parseLsn(b.stopLsn) - 1n) === b.timeline);
  const before = onPath.filter((b) => {
    if ('time' in input.target) return new Date(b.finishedAt).getTime() <= targetTime!.getTime();
    if ('lsn' in input.target) return parseLsn(b.stopLsn) <= parseLsn(input.target.lsn);
    return true;
  });
  const backup = before.sort((a, b) => a.backupId.localeCompare(b.backupId)).at(-1);
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
    throw nonRetryable(ErrorType.WalGap, `timeline ${targetTimeline}'s history file ${historyFileName(targetTimeline)} is missing from the archive`);
  }
  const first = segmentOf(parseLsn(backup.startLsn));
  const mustReach = segmentOf(parseLsn(backup.stopLsn));
  const needed = (segno: bigint) => {
    const start = segno * BigInt(WAL_SEGMENT_BYTES);
    let tli = timelineAt(path, start);
    for (const p of path) if (p.from < start + BigInt(WAL_SEGMENT_BYTES) && (p.to === undefined || p.to > start)) tli = p.timeline;
    return segmentName(tli, segno);
  };
  // The newest segment on the target timeline's path. Segments off the path (a parent's abandoned
  // branch after its switch point, a sibling timeline) are never replayed, so they prove no gap.
  const lastInArchive = segments.reduce((max, s) => (s.parsed!.segment > max && needed(s.parsed!.segment) === s.name ? s.parsed!.segment : max), -1n);

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

function gap(missing: string, backup: BackupSummary, extra?: string) {
  return nonRetryable(
    ErrorType.WalGap,
    `WAL segment ${missing} is missing from the archive: replay from base backup ${backup.backupId} cannot pass it${extra ? ` (${extra})` : ''}`,
  );
}

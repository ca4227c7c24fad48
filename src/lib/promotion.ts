// promoteStandby's judgement, pure: is the standby caught up to the repository's WAL archive, by
// how much is it behind, what must the approver be warned of (a primary still up: split brain; an
// archive that already holds a later timeline, another standby promoted), the approval text, and
// promote's second look: what changed since the approver read it.
import { HISTORY_NAME, parseLsn, parseSegmentName, segmentName, segmentOf, WAL_SEGMENT_BYTES } from './wal.js';

/** One look at a standby about to be promoted, at its primary, and at the cluster's archive. */
export interface PromotionLook {
  standby: string;
  /** host:port */
  address: string;
  inRecovery: boolean;
  /** The timeline it replays (its WAL receiver's or its last restartpoint's, the higher). */
  timeline: number;
  receiveLsn: string | null;
  replayLsn: string | null;
  replayPaused: boolean;
  /** Whether it has a restore_command (never the command itself: it may hold credentials); undefined when it could not be read. */
  hasRestoreCommand?: boolean;
  /** The other configured standbys that answered and are not in recovery: "replica2 (db3:5432)". */
  otherPrimaries?: string[];
  primary: { address: string; reachable: false; error: string } | PrimarySeen;
  /** The newest archived segment on the standby's timeline, and the timelines whose history is archived. */
  archive: { lastSegment?: string; newerSegment?: string; histories: number[] };
}

interface PrimarySeen {
  address: string;
  reachable: true;
  inRecovery: boolean;
  currentLsn: string | null;
}

export interface PromotionJudgement {
  caughtUp: boolean;
  /** Archived WAL beyond the standby's replay position, in bytes and segments (0 when caught up). */
  behindBytes: number;
  behindSegments: number;
  /** The end of the newest archived segment on its timeline ("0/5000000"), when there is one. */
  archiveEnd?: string;
  /** For progress and the result: where it is against the archive. */
  detail: string;
  /** What the approver must read first (split brain, a timeline already in the archive, …). */
  warnings: string[];
  /** Other facts worth saying (the primary unreachable, replay paused). */
  notes: string[];
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
const lsnText = (lsn: bigint) =>
  `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;

/** The newest archived segment on `timeline`, one on a later timeline, and every archived history's timeline. */
export function archiveEndOf(
  names: readonly string[],
  timeline: number,
): { lastSegment?: string; newerSegment?: string; histories: number[] } {
  let last: bigint | undefined;
  let newer: string | undefined;
  const histories: number[] = [];
  for (const name of names) {
    const h = HISTORY_NAME.exec(name);
    if (h) histories.push(parseInt(h[1]!, 16));
    const seg = parseSegmentName(name);
    if (!seg) continue;
    if (seg.timeline === timeline && (last === undefined || seg.segment > last)) last = seg.segment;
    if (seg.timeline > timeline && (newer === undefined || name > newer)) newer = name;
  }
  return {
    ...(last !== undefined ? { lastSegment: segmentName(timeline, last) } : {}),
    ...(newer ? { newerSegment: newer } : {}),
    histories: histories.sort((a, b) => a - b),
  };
}

export function judgePromotion(look: PromotionLook): PromotionJudgement {
  const warnings: string[] = [];
  const notes: string[] = [];
  const replay = look.replayLsn ? parseLsn(look.replayLsn) : 0n;
  const { lastSegment, newerSegment, histories } = look.archive;
  let behindBytes = 0;
  let behindSegments = 0;
  let archiveEnd: bigint | undefined;
  if (lastSegment) {
    archiveEnd = (parseSegmentName(lastSegment)!.segment + 1n) * BigInt(WAL_SEGMENT_BYTES);
    if (replay < archiveEnd) {
      behindBytes = Number(archiveEnd - replay);
      behindSegments = Number(parseSegmentName(lastSegment)!.segment - segmentOf(replay) + 1n);
    }
  } else
    warnings.push(
      `the archive holds no WAL of timeline ${look.timeline}: nothing to compare the standby with, so what it lacks cannot be told. Check that this worker's repository is the one the primary archives to (not another or a host-local one) before approving`,
    );
  const later = histories.filter((t) => t > look.timeline);
  if (later.length || newerSegment)
    warnings.push(
      `the archive holds ${later.length ? `the history of timeline${later.length > 1 ? 's' : ''} ${later.join(', ')}` : ''}${later.length && newerSegment ? ' and ' : ''}${newerSegment ? `WAL of timeline ${parseSegmentName(newerSegment)!.timeline} (${newerSegment})` : ''}, later than the standby's ${look.timeline}: another server was promoted or recovered from this archive (a second promotion in this cluster?); the standby has not followed it`,
    );
  if (histories.includes(look.timeline + 1) && !look.hasRestoreCommand)
    warnings.push(
      `the standby has no restore_command to see timeline ${look.timeline + 1}'s archived history: promoted, it would start timeline ${look.timeline + 1} again and its archiving (wal-push) would refuse that history file. Give it restore_command = pgwarden wal-get (createStandby does) before promoting`,
    );
  for (const other of look.otherPrimaries ?? [])
    warnings.push(
      `ANOTHER CONFIGURED STANDBY, ${other}, ANSWERS AND IS NOT IN RECOVERY: it was promoted already (a second promotion in this cluster?); promoting this one too makes two primaries`,
    );
  const p = look.primary;
  if (!p.reachable) notes.push(`the primary ${p.address} is unreachable (${p.error})`);
  else if (!p.inRecovery)
    warnings.push(
      `THE PRIMARY ${p.address} IS UP AND NOT IN RECOVERY: promoting makes two primaries (split brain), each taking writes the other never sees. Stop or fence the old primary first (pg_ctl stop, or cut it off from its clients), then approve`,
    );
  else notes.push(`the server at the primary's address ${p.address} is itself in recovery`);
  if (p.reachable && p.currentLsn && look.receiveLsn && parseLsn(p.currentLsn) > parseLsn(look.receiveLsn))
    notes.push(
      `the primary is at ${p.currentLsn}, ${mib(Number(parseLsn(p.currentLsn) - parseLsn(look.receiveLsn)))} beyond what the standby received`,
    );
  const unreplayed =
    look.receiveLsn && look.replayLsn ? Number(parseLsn(look.receiveLsn) - parseLsn(look.replayLsn)) : 0;
  if (unreplayed > 0)
    notes.push(
      `it received ${mib(unreplayed)} of WAL it has not replayed yet (receive ${look.receiveLsn} − replay ${look.replayLsn}): it replays all of it before it ends recovery, which takes as long as replaying it takes`,
    );
  if (look.replayPaused)
    notes.push(
      `replay is paused at ${look.replayLsn}: promotion resumes it and replays what the standby received (to ${look.receiveLsn ?? 'its end'})`,
    );
  const caughtUp = behindBytes === 0;
  const detail = !lastSegment
    ? `replayed to ${look.replayLsn} on timeline ${look.timeline}; the archive has nothing on that timeline`
    : caughtUp
      ? `caught up to the archive: replayed to ${look.replayLsn}, the archive ends at ${lsnText(archiveEnd!)} (${lastSegment})`
      : `${mib(behindBytes)} (${behindSegments} segment${behindSegments === 1 ? '' : 's'}) behind the archive: replayed to ${look.replayLsn}, the archive ends at ${lsnText(archiveEnd!)} (${lastSegment})${look.replayPaused ? '; replay is paused (pg_wal_replay_resume() lets it go on)' : ''}`;
  return {
    caughtUp,
    behindBytes,
    behindSegments,
    ...(archiveEnd !== undefined ? { archiveEnd: lsnText(archiveEnd) } : {}),
    detail,
    warnings,
    notes,
  };
}

/** What approving does, for the approval notice and the run's details: warnings first. */
export function promotionApprovalText(cluster: string, look: PromotionLook, judged: PromotionJudgement): string {
  const lost = judged.caughtUp
    ? ''
    : ` ANYTHING COMMITTED IN THE LAST ${mib(judged.behindBytes)} OF ARCHIVED WAL (${judged.behindSegments} segment${judged.behindSegments === 1 ? '' : 's'}, from ${look.replayLsn} to ${judged.archiveEnd}) IS NOT ON THE NEW PRIMARY, unless the standby restores it before it ends recovery.`;
  return [
    ...judged.warnings.map((w) => `WARNING: ${w}.`),
    `Promote standby ${look.standby} (${look.address}) of ${cluster} to primary: it ends recovery after replaying what it has (${judged.detail}) and starts a new timeline after ${look.timeline}; this cannot be undone (the old primary must then be rebuilt as a standby of it).${lost}`,
    ...judged.notes.map((n) => `Note: ${n}.`),
  ].join(' ');
}

/** What a warning is about, so that a second look can tell a new danger from one the approver read. */
const WARNING_KINDS: [string, RegExp][] = [
  ['primary-up', /^THE PRIMARY .* IS UP AND NOT IN RECOVERY/],
  ['other-primary', /^ANOTHER CONFIGURED STANDBY, (.*), ANSWERS/],
  ['later-timeline', /^the archive holds .*, later than the standby's/],
  ['no-restore-command', /^the standby has no restore_command/],
  ['no-archive', /^the archive holds no WAL of timeline/],
];
const kindOf = (warning: string) => {
  for (const [kind, re] of WARNING_KINDS) {
    const m = re.exec(warning);
    // Each other primary is its own danger: the approver read of replica2, not of replica3.
    if (m) return m[1] ? `${kind}:${m[1]}` : kind;
  }
  return warning;
};

/**
 * promote's second look, just before pg_promote(): why it must not go on (the approval is stale), or
 * undefined. Refused: a warning of a kind the approval did not carry (the primary up again, another
 * standby promoted, a later timeline archived), or behind the archive without allowBehindArchive.
 */
export function staleApproval(
  now: PromotionJudgement,
  approved: { warnings: readonly string[]; allowBehindArchive: boolean },
): string | undefined {
  const read = new Set(approved.warnings.map(kindOf));
  const fresh = now.warnings.filter((w) => !read.has(kindOf(w)));
  const why = [
    ...fresh.map((w) => `${w} (not in the approval)`),
    ...(!now.caughtUp && !approved.allowBehindArchive ? [`it is ${now.detail}`] : []),
  ];
  return why.length ? why.join('; ') : undefined;
}

// WAL arithmetic: LSNs, segment file names, timeline history, and the question PITR's plan step
// must answer — is every segment from a base backup to the target in the archive, on the right
// timeline? Pure, so workflows and unit tests can use it. Segments are 16 MiB (PostgreSQL's default;
// clusters initialised with another --wal-segsize are refused by the archive commands).

export const WAL_SEGMENT_BYTES = 16 * 1024 * 1024;
const SEGMENTS_PER_XLOGID = 0x1_0000_0000 / WAL_SEGMENT_BYTES; // 256

/** `000000010000000000000003` */
export const SEGMENT_NAME = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;
/** `00000002.history` */
export const HISTORY_NAME = /^([0-9A-F]{8})\.history$/;
/** `000000010000000000000002.00000028.backup` */
export const BACKUP_LABEL_NAME = /^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$/;
/** `000000010000000000000003.partial` (written at promotion by a standby) */
export const PARTIAL_NAME = /^[0-9A-F]{24}\.partial$/;

/** A WAL file name PostgreSQL may hand to archive_command / ask of restore_command. */
export function isWalFileName(name: string): boolean {
  return SEGMENT_NAME.test(name) || HISTORY_NAME.test(name) || BACKUP_LABEL_NAME.test(name) || PARTIAL_NAME.test(name);
}

/** LSN `16/B374D848` as a bigint byte position. */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not an LSN (like 16/B374D848)`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function isLsn(text: string): boolean {
  return /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/.test(text.trim());
}

/** The segment number holding an LSN. */
export function segmentOf(lsn: bigint): bigint {
  return lsn / BigInt(WAL_SEGMENT_BYTES);
}

export function segmentName(timeline: number, segment: bigint): string {
  const hi = segment / BigInt(SEGMENTS_PER_XLOGID);
  const lo = segment % BigInt(SEGMENTS_PER_XLOGID);
  return hex8(timeline) + hex8(Number(hi)) + hex8(Number(lo));
}

export function parseSegmentName(name: string): { timeline: number; segment: bigint } | undefined {
  const m = SEGMENT_NAME.exec(name);
  if (!m) return undefined;
  // With 16 MiB segments the low part runs 00000000..000000FF; anything above is not a segment name
  // (it would alias another segment's number).
  if (parseInt(m[3]!, 16) >= SEGMENTS_PER_XLOGID) return undefined;
  return {
    timeline: parseInt(m[1]!, 16),
    segment: BigInt(parseInt(m[2]!, 16)) * BigInt(SEGMENTS_PER_XLOGID) + BigInt(parseInt(m[3]!, 16)),
  };
}

export function historyFileName(timeline: number): string {
  return `${hex8(timeline)}.history`;
}

function hex8(n: number): string {
  return n.toString(16).toUpperCase().padStart(8, '0');
}

/** One line of a timeline history file: timeline `parent` ended (and its child began) at `switchpoint`. */
export interface TimelineSwitch {
  parent: number;
  switchpoint: bigint;
}

/** Parses `<tli>.history`: lines `parentTLI<TAB>switchpoint<TAB>reason`, oldest first. */
export function parseHistory(text: string): TimelineSwitch[] {
  const out: TimelineSwitch[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [tli, lsn] = line.split(/\s+/);
    if (!tli || !lsn || !/^\d+$/.test(tli) || !isLsn(lsn)) throw new Error(`bad timeline history line "${line}"`);
    out.push({ parent: Number(tli), switchpoint: parseLsn(lsn) });
  }
  return out;
}

/**
 * Which timeline each part of the WAL belongs to, on the way to `target`: its history file lists
 * its ancestors with the LSN where each ended. Returns [{timeline, from, to}] in LSN order; `to` is
 * exclusive and undefined for the target timeline itself.
 */
export function timelinePath(
  target: number,
  history: TimelineSwitch[],
): { timeline: number; from: bigint; to?: bigint }[] {
  const path: { timeline: number; from: bigint; to?: bigint }[] = [];
  let from = 0n;
  for (const h of history) {
    path.push({ timeline: h.parent, from, to: h.switchpoint });
    from = h.switchpoint;
  }
  path.push({ timeline: target, from });
  return path;
}

/** The timeline that holds `lsn` on the path (a switch point belongs to the child). */
export function timelineAt(path: ReturnType<typeof timelinePath>, lsn: bigint): number {
  for (const p of path) if (lsn >= p.from && (p.to === undefined || lsn < p.to)) return p.timeline;
  return path.at(-1)!.timeline;
}

/**
 * The segment files needed to replay from `start` up to and including the segment holding `end`,
 * along the timeline path. The segment that holds a switch point exists on both timelines; the
 * child's copy is the one recovery reads.
 */
export function segmentsBetween(path: ReturnType<typeof timelinePath>, start: bigint, end: bigint): string[] {
  const out: string[] = [];
  for (let seg = segmentOf(start); seg <= segmentOf(end); seg++) {
    const segStart = seg * BigInt(WAL_SEGMENT_BYTES);
    const segEnd = segStart + BigInt(WAL_SEGMENT_BYTES) - 1n;
    // The newest timeline whose range overlaps this segment.
    let tli = timelineAt(path, segStart);
    for (const p of path) if (p.from <= segEnd && (p.to === undefined || p.to > segStart)) tli = p.timeline;
    out.push(segmentName(tli, seg));
  }
  return out;
}

/**
 * Whether a file in pg_wal holds the segment its name says: its first page header (XLogPageHeaderData:
 * magic, info, timeline, page address, little-endian) names that timeline and the segment's start.
 * Recycled segments (renamed ahead, still holding an old segment's pages) and preallocated ones
 * (zeros) do not.
 */
export function headerMatchesSegment(header: Uint8Array, name: string): boolean {
  const seg = parseSegmentName(name);
  if (!seg || header.length < 16) return false;
  const view = new DataView(header.buffer, header.byteOffset, 16);
  return (
    view.getUint32(4, true) === seg.timeline && view.getBigUint64(8, true) === seg.segment * BigInt(WAL_SEGMENT_BYTES)
  );
}

// What pg_waldump shows of archived WAL, and whether that reaches a recovery target: how plan proves
// from the WAL's content that replay gets there.
import { parseLsn } from './wal.js';
import type { RecoveryTarget } from './recovery.js';

/** What pg_waldump shows of WAL: every record's start, and the commit and abort records with their times. */
export interface WalContent {
  /** Start LSN of the last record decoded. */
  lastRecord?: bigint;
  /** Commit and abort records (two-phase ones too): start LSN and time in microseconds since the epoch. */
  ends: { lsn: bigint; micros: bigint }[];
}

const WALDUMP_RECORD = /\blsn: ([0-9A-F]+\/[0-9A-F]+), prev [0-9A-F]+\/[0-9A-F]+, desc: (.*)$/;
const XACT_END = /^(?:COMMIT|ABORT)(?:_PREPARED)? (?:\d+: )?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC\b/;

/** Parses `pg_waldump` output run with TZ=UTC (its times are printed in the process's zone). */
export function parseWaldump(text: string): WalContent {
  const out: WalContent = { ends: [] };
  for (const line of text.split('\n')) {
    const m = WALDUMP_RECORD.exec(line);
    if (!m) continue;
    const lsn = parseLsn(m[1]!);
    if (out.lastRecord === undefined || lsn > out.lastRecord) out.lastRecord = lsn;
    if (!/^rmgr: Transaction\b/.test(line)) continue;
    const end = XACT_END.exec(m[2]!);
    if (end) out.ends.push({ lsn, micros: timeMicros(`${end[1]!.replace(' ', 'T')}Z`) });
  }
  return out;
}

/** A time with a zone as microseconds since the epoch (Date keeps milliseconds only). */
export function timeMicros(text: string): bigint {
  const t = text.trim();
  const fraction = /:\d\d\.(\d+)/.exec(t)?.[1] ?? '';
  const whole = new Date(
    t
      .replace(/(:\d\d)\.\d+/, '$1')
      .replace(' ', 'T')
      .replace(/([+-]\d{2})$/, '$1:00'),
  );
  if (Number.isNaN(whole.getTime())) throw new Error(`"${text}" is not a time`);
  return BigInt(whole.getTime()) * 1000n + BigInt((fraction + '000000').slice(0, 6));
}

/**
 * Whether replay reaches a time or LSN target within this WAL. Replay to a time stops before the
 * first commit or abort *after* it (recovery_target_inclusive = on, PostgreSQL's default), so one
 * must exist; replay to an LSN needs a record that starts at or past it. Without that, PostgreSQL
 * ends recovery with "recovery ended before configured recovery target was reached".
 */
export function reachesTarget(target: RecoveryTarget, content: WalContent): boolean {
  if ('time' in target) {
    const t = timeMicros(target.time);
    return content.ends.some((e) => e.micros > t);
  }
  if ('lsn' in target) return content.lastRecord !== undefined && content.lastRecord >= parseLsn(target.lsn);
  return true;
}

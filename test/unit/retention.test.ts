import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatBackupId } from '../../src/lib/ids.js';
import {
  applyRetention,
  DEFAULT_BASE_RETENTION,
  DEFAULT_RETENTION,
  isoWeekKey,
  retentionBound,
  type RetentionCandidate,
  type RetentionPolicy,
} from '../../src/lib/retention.js';

const at = (iso: string, extra: Partial<RetentionCandidate> = {}): RetentionCandidate => {
  const time = new Date(iso);
  return { backupId: formatBackupId(time), time, verified: false, ...extra };
};
const kept = (backups: RetentionCandidate[], policy: RetentionPolicy) =>
  applyRetention(backups, policy)
    .keep.map((k) => k.backupId)
    .sort();
const ids = (...isos: string[]) => isos.map((i) => formatBackupId(new Date(i))).sort();

/** One backup a day at 02:00 UTC from `from` for `days` days. */
function daily(from: string, days: number): RetentionCandidate[] {
  const start = new Date(from).getTime();
  return Array.from({ length: days }, (_, i) => at(new Date(start + i * 86_400_000).toISOString()));
}

describe('ISO weeks', () => {
  it('put the days around New Year in the right week-year', () => {
    expect(isoWeekKey(new Date('2026-12-31T12:00:00Z'))).toBe('2026-W53'); // Thursday
    expect(isoWeekKey(new Date('2027-01-03T12:00:00Z'))).toBe('2026-W53'); // Sunday
    expect(isoWeekKey(new Date('2027-01-04T12:00:00Z'))).toBe('2027-W01'); // Monday
    expect(isoWeekKey(new Date('2025-12-29T12:00:00Z'))).toBe('2026-W01'); // Monday of 2026-W01
    expect(isoWeekKey(new Date('2026-11-22T02:00:00Z'))).toBe('2026-W47'); // Sunday
  });
});

describe('GFS on hand-written calendars', () => {
  it('keeps 7 daily, 4 weekly, 12 monthly and yearly across a year end', () => {
    // Every day from 2025-11-01 to 2027-01-10 at 02:00.
    const backups = daily('2025-11-01T02:00:00Z', 436);
    const policy = { daily: 7, weekly: 4, monthly: 12, yearly: null, minimum: 3 };
    const decision = applyRetention(backups, policy);
    const reasonsOf = (iso: string) =>
      decision.keep.find((k) => k.backupId === formatBackupId(new Date(iso)))?.reasons ?? [];
    const byReason = (r: string) =>
      decision.keep
        .filter((k) => k.reasons.includes(r as never))
        .map((k) => k.backupId)
        .sort();

    expect(byReason('daily')).toEqual(
      ids(...['04', '05', '06', '07', '08', '09', '10'].map((d) => `2027-01-${d}T02:00:00Z`)),
    );
    // Weeks: 2027-W01 (Jan 4-10) newest is Jan 10; 2026-W53 (Dec 28 - Jan 3) newest Jan 3; W52 Dec 27; W51 Dec 20.
    expect(byReason('weekly')).toEqual(
      ids('2027-01-10T02:00:00Z', '2027-01-03T02:00:00Z', '2026-12-27T02:00:00Z', '2026-12-20T02:00:00Z'),
    );
    // Months: newest of each of the 12 most recent months: Jan 2027, then Dec..Feb 2026 month ends.
    expect(byReason('monthly')).toEqual(
      ids(
        '2027-01-10T02:00:00Z',
        ...['12-31', '11-30', '10-31', '09-30', '08-31', '07-31', '06-30', '05-31', '04-30', '03-31', '02-28'].map(
          (d) => `2026-${d}T02:00:00Z`,
        ),
      ),
    );
    // Years, forever: newest of 2027, 2026 and 2025.
    expect(byReason('yearly')).toEqual(ids('2027-01-10T02:00:00Z', '2026-12-31T02:00:00Z', '2025-12-31T02:00:00Z'));
    expect(reasonsOf('2027-01-10T02:00:00Z')).toEqual(['minimum', 'daily', 'weekly', 'monthly', 'yearly']);
    // 2026-01-31 is no longer a monthly (13 months back) nor anything else.
    expect(reasonsOf('2026-01-31T02:00:00Z')).toEqual([]);
    expect(decision.delete.map((d) => d.backupId)).toContain(formatBackupId(new Date('2026-01-31T02:00:00Z')));
    expect(decision.keep.length + decision.delete.length).toBe(436);
  });

  it('counts periods that have backups, not calendar periods (gaps do not eat the quota)', () => {
    const backups = [
      at('2026-11-22T02:00:00Z'),
      at('2026-11-01T02:00:00Z'),
      at('2026-06-15T02:00:00Z'),
      at('2026-06-14T02:00:00Z'),
    ];
    expect(kept(backups, { daily: 3, weekly: 0, monthly: 0, yearly: 0, minimum: 1 })).toEqual(
      ids('2026-11-22T02:00:00Z', '2026-11-01T02:00:00Z', '2026-06-15T02:00:00Z'),
    );
  });

  it('keeps the newest verified backup and any backup in use, whatever their age', () => {
    const backups = [...daily('2026-01-01T02:00:00Z', 30)];
    backups[3] = { ...backups[3]!, verified: true };
    backups[10] = { ...backups[10]!, inUse: true };
    const decision = applyRetention(backups, { daily: 2, weekly: 0, monthly: 0, yearly: 0, minimum: 1 });
    expect(decision.keep.find((k) => k.backupId === backups[3]!.backupId)?.reasons).toEqual(['newest-verified']);
    expect(decision.keep.find((k) => k.backupId === backups[10]!.backupId)?.reasons).toEqual(['in-use']);
    expect(decision.keep).toHaveLength(4);
  });

  it('keeps several backups of one day only through minimum', () => {
    const backups = [at('2026-11-22T02:00:00Z'), at('2026-11-22T08:00:00Z'), at('2026-11-22T14:00:00Z')];
    expect(kept(backups, { daily: 7, weekly: 4, monthly: 12, yearly: null, minimum: 1 })).toEqual(
      ids('2026-11-22T14:00:00Z'),
    );
    expect(kept(backups, { ...DEFAULT_RETENTION, minimum: 3 })).toHaveLength(3);
  });
});

describe('invariants over generated histories', () => {
  const history = fc.uniqueArray(
    fc.record({
      seconds: fc.integer({ min: 1_600_000_000, max: 1_900_000_000 }),
      verified: fc.boolean(),
      inUse: fc.boolean(),
    }),
    { selector: (b) => b.seconds, maxLength: 60 },
  );
  const policy = fc.record({
    daily: fc.nat(10),
    weekly: fc.nat(6),
    monthly: fc.nat(14),
    yearly: fc.option(fc.nat(3), { nil: null }),
    minimum: fc.integer({ min: 1, max: 5 }),
  });

  it('always hold', () => {
    fc.assert(
      fc.property(history, policy, (raw, p) => {
        const backups = raw.map((b) => {
          const time = new Date(b.seconds * 1000);
          return { backupId: formatBackupId(time), time, verified: b.verified, inUse: b.inUse && b.seconds % 7 === 0 };
        });
        const d = applyRetention(backups, p);
        const keep = new Set(d.keep.map((k) => k.backupId));
        const del = new Set(d.delete.map((k) => k.backupId));
        // A partition of the input.
        expect(keep.size + del.size).toBe(backups.length);
        for (const b of backups) expect(keep.has(b.backupId) !== del.has(b.backupId)).toBe(true);
        // Never leaves zero backups.
        if (backups.length > 0) expect(keep.size).toBeGreaterThan(0);
        const newestFirst = [...backups].sort((a, b) => b.time.getTime() - a.time.getTime());
        // The newest `minimum`, the newest verified, and everything in use are kept.
        for (const b of newestFirst.slice(0, p.minimum)) expect(keep.has(b.backupId)).toBe(true);
        const verified = newestFirst.find((b) => b.verified);
        if (verified) expect(keep.has(verified.backupId)).toBe(true);
        for (const b of backups.filter((x) => x.inUse)) expect(keep.has(b.backupId)).toBe(true);
        // The newest backup is always kept (minimum >= 1).
        if (newestFirst[0]) expect(keep.has(newestFirst[0].backupId)).toBe(true);
        // Every kept backup says why.
        for (const k of d.keep) expect(k.reasons.length).toBeGreaterThan(0);
      }),
      { numRuns: 500 },
    );
  });
});

describe('retention defaults and the PITR window', () => {
  it('keeps the base backup the PITR window starts from, whatever the policy says', () => {
    const weeks = [0, 7, 14, 21, 28].map((d) =>
      at(new Date(Date.UTC(2026, 10, 1 + d, 2)).toISOString(), { pitrWindow: d === 7 }),
    );
    const d = applyRetention(weeks, { daily: 0, weekly: 1, monthly: 0, yearly: 0, minimum: 1 });
    expect(d.keep.map((k) => [k.backupId, k.reasons])).toEqual([
      [weeks[4]!.backupId, ['minimum', 'weekly']],
      [weeks[1]!.backupId, ['pitr-window']],
    ]);
  });

  it('ships bounded defaults for both kinds', () => {
    expect(DEFAULT_RETENTION.yearly).not.toBeNull();
    expect(DEFAULT_BASE_RETENTION).toEqual({ daily: 0, weekly: 2, monthly: 3, yearly: 0, minimum: 2 });
    expect(retentionBound(DEFAULT_RETENTION)).toBe(29);
    expect(retentionBound(DEFAULT_BASE_RETENTION, true)).toBe(9);
    expect(retentionBound({ ...DEFAULT_RETENTION, yearly: null })).toBeUndefined();
  });
});

// PITR's plan step on hand-built archives: for time, LSN, restore-point and latest targets it picks the
// newest base backup that ends before the target on the target timeline's path (never one taken on a
// parent's abandoned branch), lists every WAL file replay reads — history files first, each switch
// point's segment from the child timeline — and refuses, with the failure type operators match on,
// targets it cannot reach: BadTarget for malformed, zone-less, future, too-early or not-yet-archived
// targets, WalGap when a segment on the way is missing from the archive. The recovery settings come
// from one list, so that every setting written is also reset.
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { ErrorType } from '../../src/lib/errors.js';
import {
  RECOVERY_SETTING_NAMES,
  recoverySettingResets,
  recoverySettings,
  validateTarget,
  type RecoveryTarget,
} from '../../src/lib/recovery.js';
import { planRecoveryPath, type ArchivedWal, type BackupSummary } from '../../src/lib/recoveryPath.js';
import { parseHistory, type TimelineSwitch } from '../../src/lib/wal.js';

const NOW = new Date('2026-11-24T00:00:00Z');

/** Segment `seg` (hex) of timeline `tli`, e.g. seg(1, '03') = 000000010000000000000003. */
const seg = (tli: number, s: string) =>
  `${tli.toString(16).toUpperCase().padStart(8, '0')}00000000${s.padStart(8, '0')}`;
const wal = (name: string, archivedAt: string): ArchivedWal => ({ name, archivedAt });

function failureOf(fn: () => unknown): ApplicationFailure {
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ApplicationFailure);
    expect((e as ApplicationFailure).nonRetryable).toBe(true);
    return e as ApplicationFailure;
  }
  throw new Error(
    `expected a failure, got ${JSON.stringify(result, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`,
  );
}

// ---- One timeline: two nightly backups, segments 2..8 archived through two days. ----

const MON: BackupSummary = {
  backupId: '20261122T020000Z',
  timeline: 1,
  startLsn: '0/2000028',
  stopLsn: '0/2000100',
  finishedAt: '2026-11-22T02:00:05Z',
};
const TUE: BackupSummary = {
  backupId: '20261123T020000Z',
  timeline: 1,
  startLsn: '0/6000028',
  stopLsn: '0/6000100',
  finishedAt: '2026-11-23T02:00:05Z',
};

const TL1: ArchivedWal[] = [
  wal(seg(1, '02'), '2026-11-22T02:00:06Z'),
  wal('000000010000000000000002.00000028.backup', '2026-11-22T02:00:06Z'),
  wal(seg(1, '03'), '2026-11-22T08:00:00Z'),
  wal(seg(1, '04'), '2026-11-22T14:00:00Z'),
  wal(seg(1, '05'), '2026-11-22T20:00:00Z'),
  wal(seg(1, '06'), '2026-11-23T02:00:06Z'),
  wal('000000010000000000000006.00000028.backup', '2026-11-23T02:00:06Z'),
  wal(seg(1, '07'), '2026-11-23T08:00:00Z'),
  wal(seg(1, '08'), '2026-11-23T14:00:00Z'),
];

function plan(
  target: RecoveryTarget,
  over: { backups?: BackupSummary[]; wal?: ArchivedWal[]; histories?: Map<number, TimelineSwitch[]> } = {},
) {
  return planRecoveryPath({
    target,
    backups: over.backups ?? [MON, TUE],
    wal: over.wal ?? TL1,
    histories: over.histories ?? new Map(),
    now: NOW,
  });
}
const without = (files: ArchivedWal[], ...names: string[]) => files.filter((w) => !names.includes(w.name));

describe('validateTarget', () => {
  it('turns a time with a zone into that instant', () => {
    expect(validateTarget({ time: '2026-11-22 14:31:00+00' }, NOW)?.toISOString()).toBe('2026-11-22T14:31:00.000Z');
    expect(validateTarget({ time: '2026-11-22 16:31:00+02' }, NOW)?.toISOString()).toBe('2026-11-22T14:31:00.000Z');
    expect(validateTarget({ time: '2026-11-22 20:01:00+05:30' }, NOW)?.toISOString()).toBe('2026-11-22T14:31:00.000Z');
    expect(validateTarget({ time: '2026-11-22T06:31:00-0800' }, NOW)?.toISOString()).toBe('2026-11-22T14:31:00.000Z');
    expect(validateTarget({ time: '2026-11-22T14:31:00Z' }, NOW)?.toISOString()).toBe('2026-11-22T14:31:00.000Z');
    expect(validateTarget({ time: ' 2026-11-22T14:31:00.250Z ' }, NOW)?.toISOString()).toBe('2026-11-22T14:31:00.250Z');
    expect(validateTarget({ time: NOW.toISOString() }, NOW)?.getTime()).toBe(NOW.getTime()); // "now" is not the future
  });

  it('accepts well-formed LSN, restore-point and latest targets', () => {
    expect(validateTarget({ lsn: '0/3000060' }, NOW)).toBeUndefined();
    expect(validateTarget({ name: 'before-migration' }, NOW)).toBeUndefined();
    expect(validateTarget({ name: 'x'.repeat(63) }, NOW)).toBeUndefined();
    expect(validateTarget({ latest: true }, NOW)).toBeUndefined();
  });

  const refusals: [string, unknown, RegExp][] = [
    ['a time without a zone', { time: '2026-11-22 14:31:00' }, /no time zone/],
    ['a time without seconds or zone', { time: '2026-11-22 14:31' }, /no time zone/],
    ['a bare date', { time: '2026-11-22' }, /target time/],
    ['words with a zone', { time: 'yesterday+00' }, /is not a time/],
    ['a time in the future', { time: '2026-11-24 00:00:01+00' }, /in the future/],
    ['a malformed LSN', { lsn: '0/3000060/1' }, /not an LSN/],
    ['a decimal LSN', { lsn: '50331744' }, /not an LSN/],
    ['an empty restore point', { name: '' }, /1 to 63/],
    ['a 64-character restore point', { name: 'x'.repeat(64) }, /1 to 63/],
    ['latest: false', { latest: false }, /must be true/],
    ['no kind at all', {}, /exactly one/],
    ['two kinds at once', { time: '2026-11-22 14:31:00+00', lsn: '0/3000060' }, /exactly one/],
    ['not an object', null, /must be one of/],
  ];
  for (const [what, target, message] of refusals) {
    it(`refuses ${what} as BadTarget`, () => {
      const f = failureOf(() => validateTarget(target as RecoveryTarget, NOW));
      expect(f.type).toBe(ErrorType.BadTarget);
      expect(f.message).toMatch(message);
    });
  }
});

describe('planRecoveryPath on one timeline', () => {
  it('replays from the newest backup before a time target to the first segment archived at or after it', () => {
    const p = plan({ time: '2026-11-22 10:00:00+00' });
    expect(p.backup).toBe(MON);
    expect(p.targetTimeline).toBe(1);
    // Segment 3 was archived at 08:00, before the target; segment 4 (14:00) holds 10:00.
    expect(p.walFiles).toEqual([seg(1, '02'), seg(1, '03'), seg(1, '04')]);
    expect(p.lastSegment).toBe(seg(1, '04'));
  });

  it('reads the target time in its own zone', () => {
    // 12:00+02 is 10:00Z: the same plan as above, not one ending in segment 5.
    expect(plan({ time: '2026-11-22 12:00:00+02' }).walFiles).toEqual([seg(1, '02'), seg(1, '03'), seg(1, '04')]);
  });

  it('stops at a segment archived exactly at the target time', () => {
    expect(plan({ time: '2026-11-22T08:00:00Z' }).walFiles).toEqual([seg(1, '02'), seg(1, '03')]);
  });

  it('uses a backup that finished exactly at the target time, and not one that finished a second later', () => {
    const atFinish = plan({ time: TUE.finishedAt });
    expect(atFinish.backup).toBe(TUE);
    expect(atFinish.walFiles).toEqual([seg(1, '06')]); // its own segment was archived after it finished
    expect(plan({ time: '2026-11-23T02:00:04Z' }).backup).toBe(MON);
  });

  it('picks the newer backup for a later time target', () => {
    const p = plan({ time: '2026-11-23 10:00:00+00' });
    expect(p.backup).toBe(TUE);
    expect(p.walFiles).toEqual([seg(1, '06'), seg(1, '07'), seg(1, '08')]);
  });

  it('does not care in which order the backups are listed', () => {
    expect(plan({ latest: true }, { backups: [TUE, MON] }).backup).toBe(TUE);
    expect(plan({ time: '2026-11-22 10:00:00+00' }, { backups: [TUE, MON] }).backup).toBe(MON);
  });

  it('refuses a time before the oldest backup, naming it', () => {
    const f = failureOf(() => plan({ time: '2026-11-22 01:00:00+00' }));
    expect(f.type).toBe(ErrorType.BadTarget);
    expect(f.message).toContain(MON.backupId);
  });

  it('refuses a time in the future and one without a zone before looking at the archive', () => {
    expect(failureOf(() => plan({ time: '2026-11-25 00:00:00+00' })).type).toBe(ErrorType.BadTarget);
    expect(failureOf(() => plan({ time: '2026-11-22 10:00:00' })).type).toBe(ErrorType.BadTarget);
  });

  it('says so when the archive ends before a time target', () => {
    // Segment 8 was archived at 14:00; the target is later and segment 9 is not archived yet.
    const f = failureOf(() => plan({ time: '2026-11-23 20:00:00+00' }));
    expect(f.type).toBe(ErrorType.BadTarget);
    expect(f.message).toContain(`archive ends at ${seg(1, '08')}`);
    expect(f.message).toContain('pg_switch_wal');
  });

  it('replays to the segment holding an LSN target', () => {
    const p = plan({ lsn: '0/4000000' });
    expect(p.backup).toBe(MON);
    expect(p.walFiles).toEqual([seg(1, '02'), seg(1, '03'), seg(1, '04')]);
  });

  it('picks the newest backup whose stop LSN is at or before an LSN target', () => {
    const atStop = plan({ lsn: TUE.stopLsn });
    expect(atStop.backup).toBe(TUE);
    expect(atStop.walFiles).toEqual([seg(1, '06')]);
    // One byte short of TUE's stop: TUE cannot reach consistency by then, so MON replays through segment 6.
    const before = plan({ lsn: '0/60000FF' });
    expect(before.backup).toBe(MON);
    expect(before.walFiles).toEqual([seg(1, '02'), seg(1, '03'), seg(1, '04'), seg(1, '05'), seg(1, '06')]);
  });

  it('replays a backup that spans two segments through its stop segment', () => {
    const b = { ...MON, stopLsn: '0/3000100' };
    expect(plan({ lsn: '0/3000100' }, { backups: [b] }).walFiles).toEqual([seg(1, '02'), seg(1, '03')]);
    expect(plan({ time: '2026-11-22T02:00:05Z' }, { backups: [b] }).walFiles).toEqual([seg(1, '02'), seg(1, '03')]);
  });

  it('refuses LSN targets before the oldest backup ends or that are malformed', () => {
    const early = failureOf(() => plan({ lsn: '0/20000FF' }));
    expect(early.type).toBe(ErrorType.BadTarget);
    expect(early.message).toContain(MON.backupId);
    const bad = failureOf(() => plan({ lsn: 'zz/1' }));
    expect(bad.type).toBe(ErrorType.BadTarget);
    expect(bad.message).toContain('zz/1');
  });

  it('refuses an LSN target beyond the archive as a gap', () => {
    const f = failureOf(() => plan({ lsn: '0/9000000' }));
    expect(f.type).toBe(ErrorType.WalGap);
    expect(f.message).toContain(seg(1, '09'));
  });

  it('replays latest from the newest backup to the end of the archive', () => {
    const p = plan({ latest: true });
    expect(p.backup).toBe(TUE);
    expect(p.walFiles).toEqual([seg(1, '06'), seg(1, '07'), seg(1, '08')]);
    expect(p.lastSegment).toBe(seg(1, '08'));
  });

  it('plans a restore point like latest: the point is found while replaying', () => {
    expect(plan({ name: 'before-migration' })).toEqual(plan({ latest: true }));
  });

  it('never lists backup label files', () => {
    expect(plan({ time: '2026-11-23 10:00:00+00' }).walFiles.some((n) => n.endsWith('.backup'))).toBe(false);
  });

  it('refuses a gap in the middle of a time or LSN replay as WalGap, naming the segment and backup', () => {
    const holed = without(TL1, seg(1, '03'));
    for (const target of [{ time: '2026-11-22 10:00:00+00' }, { lsn: '0/4000000' }]) {
      const f = failureOf(() => plan(target, { wal: holed }));
      expect(f.type).toBe(ErrorType.WalGap);
      expect(f.message).toContain(seg(1, '03'));
      expect(f.message).toContain(MON.backupId);
    }
  });

  it('ignores a gap that lies before the chosen backup', () => {
    expect(plan({ latest: true }, { wal: without(TL1, seg(1, '03')) }).walFiles).toEqual([
      seg(1, '06'),
      seg(1, '07'),
      seg(1, '08'),
    ]);
  });

  it('refuses latest when a gap is followed by newer WAL: it would stop short', () => {
    const f = failureOf(() => plan({ latest: true }, { wal: without(TL1, seg(1, '07')) }));
    expect(f.type).toBe(ErrorType.WalGap);
    expect(f.message).toContain(seg(1, '07'));
    expect(f.message).toContain('newer WAL');
  });

  it('refuses a backup whose own WAL is missing as WalGap, whatever the target', () => {
    const noOwn = without(TL1, seg(1, '06'), seg(1, '07'), seg(1, '08'));
    for (const target of [{ latest: true } as const, { time: '2026-11-23 10:00:00+00' }, { lsn: '0/6000100' }]) {
      const f = failureOf(() => plan(target, { wal: noOwn }));
      expect(f.type, JSON.stringify(target)).toBe(ErrorType.WalGap);
      expect(f.message).toContain(seg(1, '06'));
    }
  });

  it('refuses when there is no base backup at all', () => {
    expect(failureOf(() => plan({ latest: true }, { backups: [], wal: [] })).type).toBe(ErrorType.NoBackup);
    const f = failureOf(() => plan({ latest: true }, { backups: [] }));
    expect(f.type).toBe(ErrorType.BadTarget);
    expect(f.message).toContain('pgwarden base-backup');
  });
});

// ---- Two timelines: on 2026-11-23 at 09:00 the cluster was recovered to 2026-11-22 14:31, which
// ended timeline 1 at 0/5000100 and began timeline 2 there. Timeline 1's old future (segments 5..8
// and a backup taken at 18:00) stays in the archive: the abandoned branch. ----

const TL2_HISTORY = parseHistory('1\t0/5000100\tbefore 2026-11-22 14:31:00+00\n');
const ABANDONED: BackupSummary = {
  backupId: '20261122T180000Z',
  timeline: 1,
  startLsn: '0/6000028',
  stopLsn: '0/6000100',
  finishedAt: '2026-11-22T18:00:05Z',
};
const FORKED: ArchivedWal[] = [
  wal(seg(1, '02'), '2026-11-22T02:00:06Z'),
  wal(seg(1, '03'), '2026-11-22T08:00:00Z'),
  wal(seg(1, '04'), '2026-11-22T12:00:00Z'),
  wal(seg(1, '05'), '2026-11-22T16:00:00Z'),
  wal(seg(1, '06'), '2026-11-22T20:00:00Z'),
  wal(seg(1, '07'), '2026-11-23T02:00:00Z'),
  wal(seg(1, '08'), '2026-11-23T08:00:00Z'),
  wal('00000002.history', '2026-11-23T09:00:01Z'),
  wal(seg(2, '05'), '2026-11-23T09:10:00Z'),
  wal(seg(2, '06'), '2026-11-23T12:00:00Z'),
];
const TIMELINE_2_PATH = ['00000002.history', seg(1, '02'), seg(1, '03'), seg(1, '04'), seg(2, '05'), seg(2, '06')];

function planForked(target: RecoveryTarget, over: { backups?: BackupSummary[]; wal?: ArchivedWal[] } = {}) {
  return plan(target, {
    backups: over.backups ?? [MON, ABANDONED],
    wal: over.wal ?? FORKED,
    histories: new Map([[2, TL2_HISTORY]]),
  });
}

describe('planRecoveryPath across a timeline switch', () => {
  it('follows the newest timeline, switching to it at the segment holding the switch point', () => {
    const p = planForked({ latest: true });
    expect(p.targetTimeline).toBe(2);
    expect(p.walFiles).toEqual(TIMELINE_2_PATH);
    expect(p.lastSegment).toBe(seg(2, '06'));
  });

  it("never picks a backup taken on the parent's abandoned branch", () => {
    // ABANDONED is newer and ends before every target below, but its WAL is not on timeline 2's path.
    for (const target of [{ latest: true } as const, { time: '2026-11-23 11:00:00+00' }, { lsn: '0/6000200' }]) {
      const p = planForked(target);
      expect(p.backup, JSON.stringify(target)).toBe(MON);
      expect(p.walFiles).toEqual(TIMELINE_2_PATH);
    }
    const only = failureOf(() => planForked({ latest: true }, { backups: [ABANDONED] }));
    expect(only.type).toBe(ErrorType.BadTarget);
    expect(only.message).toContain("timeline 2's history");
  });

  it('refuses a backup that stopped one byte past the switch point on the parent', () => {
    const late = { ...ABANDONED, startLsn: '0/5000028', stopLsn: '0/5000101', finishedAt: '2026-11-22T14:40:00Z' };
    expect(planForked({ latest: true }, { backups: [MON, late] }).backup).toBe(MON);
  });

  it('uses a parent backup whose stop LSN is exactly the switch point', () => {
    // Its WAL, [0/5000028, 0/5000100), is all before the switch: timeline 2 shares it.
    const atSwitch = {
      ...ABANDONED,
      backupId: '20261122T143000Z',
      startLsn: '0/5000028',
      stopLsn: '0/5000100',
      finishedAt: '2026-11-22T14:30:05Z',
    };
    const p = planForked({ latest: true }, { backups: [MON, atSwitch] });
    expect(p.backup).toBe(atSwitch);
    expect(p.walFiles).toEqual(['00000002.history', seg(2, '05'), seg(2, '06')]);
  });

  it('uses a backup taken on the child timeline', () => {
    const onChild: BackupSummary = {
      backupId: '20261123T120000Z',
      timeline: 2,
      startLsn: '0/6000028',
      stopLsn: '0/6000100',
      finishedAt: '2026-11-23T11:00:05Z',
    };
    const p = planForked({ latest: true }, { backups: [MON, ABANDONED, onChild] });
    expect(p.backup).toBe(onChild);
    expect(p.walFiles).toEqual(['00000002.history', seg(2, '06')]);
  });

  it("does not take the parent's copy of the switch segment for the child's", () => {
    const f = failureOf(() => planForked({ latest: true }, { wal: without(FORKED, seg(2, '05')) }));
    expect(f.type).toBe(ErrorType.WalGap);
    expect(f.message).toContain(seg(2, '05'));
  });

  it("does not mistake the abandoned branch's later segments for newer WAL", () => {
    // Timeline 1 reaches segment 8, timeline 2 only 6: latest ends at 6 with no gap...
    expect(planForked({ latest: true }).lastSegment).toBe(seg(2, '06'));
    // ...and a time past timeline 2's last archived segment is "not archived yet", not a gap.
    const f = failureOf(() => planForked({ time: '2026-11-23 13:00:00+00' }));
    expect(f.type).toBe(ErrorType.BadTarget);
    expect(f.message).toContain(`archive ends at ${seg(2, '06')}`);
  });

  it('still sees a real gap on the child timeline', () => {
    const holed = [...without(FORKED, seg(2, '06')), wal(seg(2, '07'), '2026-11-23T13:00:00Z')];
    const f = failureOf(() => planForked({ latest: true }, { wal: holed }));
    expect(f.type).toBe(ErrorType.WalGap);
    expect(f.message).toContain(seg(2, '06'));
  });

  it("refuses when the target timeline's history file is missing from the archive", () => {
    const f = failureOf(() => planForked({ latest: true }, { wal: without(FORKED, '00000002.history') }));
    expect(f.type).toBe(ErrorType.WalGap);
    expect(f.message).toContain('00000002.history');
  });

  it('lists every history file on a deeper path before any segment', () => {
    const histories = new Map([
      [2, parseHistory('1\t0/3000060\tno recovery target specified\n')],
      [3, parseHistory('1\t0/3000060\tno recovery target specified\n2\t0/5000100\tbefore 2026-11-22 14:31:00+00\n')],
    ]);
    const archive = [
      wal(seg(1, '02'), '2026-11-22T02:00:06Z'),
      wal(seg(1, '03'), '2026-11-22T03:00:00Z'),
      wal('00000002.history', '2026-11-22T04:00:00Z'),
      wal(seg(2, '03'), '2026-11-22T04:10:00Z'),
      wal(seg(2, '04'), '2026-11-22T10:00:00Z'),
      wal(seg(2, '05'), '2026-11-22T16:00:00Z'),
      wal('00000003.history', '2026-11-23T09:00:01Z'),
      wal(seg(3, '05'), '2026-11-23T09:10:00Z'),
      wal(seg(3, '06'), '2026-11-23T12:00:00Z'),
    ];
    const p = plan({ latest: true }, { backups: [MON], wal: archive, histories });
    expect(p.targetTimeline).toBe(3);
    expect(p.walFiles).toEqual([
      '00000002.history',
      '00000003.history',
      seg(1, '02'),
      seg(2, '03'),
      seg(2, '04'),
      seg(3, '05'),
      seg(3, '06'),
    ]);
  });
});

describe('planRecoveryPath outside the PITR window', () => {
  // What WAL retention leaves: MON's start → stop (segment 2 and its label), then continuous WAL from TUE's start (6).
  const pruned = without(TL1, seg(1, '03'), seg(1, '04'), seg(1, '05'));

  it('refuses a time or LSN target between an old backup and the window as BadTarget, naming both backups and the consistency point', () => {
    for (const target of [{ time: '2026-11-22 10:00:00+00' }, { lsn: '0/4000000' }]) {
      const f = failureOf(() => plan(target, { wal: pruned }));
      expect(f.type).toBe(ErrorType.BadTarget);
      expect(f.message).toBe(
        `${'time' in target ? 'time 2026-11-22 10:00:00+00' : 'LSN 0/4000000'} is outside the PITR window (continuous WAL from base backup ${TUE.backupId}: targets from ${TUE.finishedAt}, stop LSN ${TUE.stopLsn}); ` +
          `base backup ${MON.backupId} is restorable to its consistency point ${MON.finishedAt} (stop LSN ${MON.stopLsn}) only`,
      );
    }
  });

  it("still plans the old backup's consistency point and every target inside the window", () => {
    expect(plan({ lsn: '0/2000100' }, { wal: pruned }).walFiles).toEqual([seg(1, '02')]);
    expect(plan({ time: '2026-11-23 10:00:00+00' }, { wal: pruned }).backup).toEqual(TUE);
    expect(plan({ latest: true }, { wal: pruned }).walFiles).toEqual([seg(1, '06'), seg(1, '07'), seg(1, '08')]);
  });

  it('keeps calling a hole that does not end at a newer backup start a WAL gap', () => {
    const f = failureOf(() =>
      plan({ time: '2026-11-22 10:00:00+00' }, { wal: without(TL1, seg(1, '03'), seg(1, '04')) }),
    );
    expect(f.type).toBe(ErrorType.WalGap);
    expect(f.message).toContain(seg(1, '03'));
  });
});

describe('recoverySettings', () => {
  const options = { restoreCommand: "cp '/w/%f' '%p'", timeline: 3 };
  const targets: RecoveryTarget[] = [
    { time: '2026-11-22 10:00:00+00' },
    { lsn: '0/3000000' },
    { name: 'before-deploy' },
    { latest: true },
  ];

  it("writes restore_command, the plan's timeline, promote and the target's own setting, in that order", () => {
    const base = {
      restore_command: options.restoreCommand,
      recovery_target_timeline: '3',
      recovery_target_action: 'promote',
    };
    expect(Object.entries(recoverySettings({ time: '2026-11-22 10:00:00+00' }, options))).toEqual(
      Object.entries({ ...base, recovery_target_time: '2026-11-22 10:00:00+00' }),
    );
    expect(recoverySettings({ lsn: '0/3000000' }, options)).toEqual({ ...base, recovery_target_lsn: '0/3000000' });
    expect(recoverySettings({ name: 'before-deploy' }, options)).toEqual({
      ...base,
      recovery_target_name: 'before-deploy',
    });
    expect(recoverySettings({ latest: true }, options)).toEqual(base);
  });

  it("the replay before an in-place recovery's approval stops at the target: recovery_target_action = 'shutdown'", () => {
    expect(recoverySettings({ time: '2026-11-22 10:00:00+00' }, { ...options, action: 'shutdown' })).toMatchObject({
      recovery_target_action: 'shutdown',
      recovery_target_time: '2026-11-22 10:00:00+00',
    });
  });

  it('resets every setting it writes, whatever the target', () => {
    const resets = recoverySettingResets();
    for (const target of targets) {
      for (const name of Object.keys(recoverySettings(target, options)))
        expect(resets).toContain(`ALTER SYSTEM RESET ${name}`);
    }
  });

  it('resets exactly the names it can write: one list serves both, so a setting added to it is written and reset', () => {
    const written = new Set(targets.flatMap((t) => Object.keys(recoverySettings(t, options))));
    expect(new Set(RECOVERY_SETTING_NAMES)).toEqual(written);
    expect(recoverySettingResets()).toEqual(RECOVERY_SETTING_NAMES.map((name) => `ALTER SYSTEM RESET ${name}`));
  });
});

// The base backup a PITR target needs, as plan and the offsite fetch both ask for it: from names
// alone (no WAL listing with times), among backups that may be only offsite — the newest that ends
// before the target on the target timeline's path, never one on a parent's abandoned branch, and
// none when every backup ends after the target.
import { describe, expect, it } from 'vitest';
import type { RecoveryTarget } from '../../src/lib/recovery.js';
import { chooseBaseBackup, type BackupSummary } from '../../src/lib/recoveryPath.js';
import { parseHistory } from '../../src/lib/wal.js';

const NOW = new Date('2026-11-24T00:00:00Z');
const MON = {
  backupId: '20261122T020000Z',
  timeline: 1,
  startLsn: '0/2000028',
  stopLsn: '0/2000100',
  finishedAt: '2026-11-22T02:00:05Z',
  where: 'offsite',
};
const TUE = {
  backupId: '20261123T020000Z',
  timeline: 1,
  startLsn: '0/6000028',
  stopLsn: '0/6000100',
  finishedAt: '2026-11-23T02:00:05Z',
  where: 'offsite',
};
/** Timeline 2 branched from timeline 1 at 0/4000100 (a PITR to Monday afternoon): Tuesday's backup is on the abandoned branch. */
const BRANCH = new Map([[2, parseHistory('1\t0/4000100\tbefore 2026-11-22 14:00:00+00\n')]]);
const WED2: BackupSummary & { where: string } = {
  backupId: '20261124T010000Z',
  timeline: 2,
  startLsn: '0/9000028',
  stopLsn: '0/9000100',
  finishedAt: '2026-11-23T23:00:05Z',
  where: 'local',
};

const choose = (
  target: RecoveryTarget,
  backups: (BackupSummary & { where: string })[],
  histories = new Map(),
  walNames: string[] = [],
) => chooseBaseBackup({ target, backups, walNames, histories, now: NOW });

describe('chooseBaseBackup', () => {
  it('picks the newest backup that ended before a time or LSN target, keeping what the caller knows about it', () => {
    expect(choose({ time: '2026-11-22 12:00:00+00' }, [MON, TUE]).backup).toBe(MON);
    expect(choose({ time: '2026-11-23 12:00:00+00' }, [MON, TUE]).backup).toBe(TUE);
    expect(choose({ lsn: '0/5000000' }, [MON, TUE]).backup).toBe(MON);
    expect(choose({ latest: true }, [MON, TUE]).backup).toBe(TUE);
    expect(choose({ name: 'x' }, [TUE, MON]).backup).toBe(TUE);
  });

  it('has no choice for a target before every backup', () => {
    expect(choose({ time: '2026-11-22 01:00:00+00' }, [MON, TUE]).backup).toBeUndefined();
  });

  it("follows the target timeline, which WAL names alone can reveal, past a parent's abandoned branch", () => {
    const c = choose({ latest: true }, [MON, TUE], BRANCH, ['00000002000000000000000A']);
    expect(c.targetTimeline).toBe(2);
    expect(c.backup).toBe(MON); // TUE lies on timeline 1 after the switch point
    expect(c.onPath).toEqual([MON]);
    expect(choose({ time: '2026-11-23 23:30:00+00' }, [MON, TUE, WED2], BRANCH).backup).toBe(WED2);
  });
});

describe("chooseBaseBackup and the live cluster's timeline", () => {
  it("follows the live cluster's timeline, not a newer branch a rolled-back recovery left in the archive", () => {
    // The cluster went on on timeline 1 after a recovery to Monday afternoon was rolled back.
    const c = choose({ latest: true }, [MON, TUE], BRANCH, ['00000002000000000000000A']);
    expect(c.targetTimeline).toBe(2);
    const live = chooseBaseBackup({
      target: { latest: true },
      backups: [MON, TUE],
      walNames: ['00000002000000000000000A'],
      histories: BRANCH,
      now: NOW,
      liveTimeline: 1,
    });
    expect(live.targetTimeline).toBe(1);
    expect(live.backup).toBe(TUE);
  });

  it('keeps the newest timeline when the archive does not know the live one yet (its history file not archived)', () => {
    const c = chooseBaseBackup({
      target: { latest: true },
      backups: [MON, TUE],
      walNames: [],
      histories: BRANCH,
      now: NOW,
      liveTimeline: 3,
    });
    expect(c.targetTimeline).toBe(2);
  });
});

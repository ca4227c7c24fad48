// promoteStandby's judgement: caught up to the archive or by how much behind, and what the approver
// must be warned of, and promote's second look: what changed since the approval.
import { describe, expect, it } from 'vitest';
import {
  archiveEndOf,
  judgePromotion,
  promotionApprovalText,
  staleApproval,
  type PromotionLook,
} from '../../src/lib/promotion.js';

const look = (over: Partial<PromotionLook> = {}): PromotionLook => ({
  standby: 'replica1',
  address: 'db2:5432',
  inRecovery: true,
  timeline: 1,
  receiveLsn: '0/5000000',
  replayLsn: '0/5000000',
  replayPaused: false,
  hasRestoreCommand: true,
  primary: { address: 'db1:5432', reachable: false, error: 'ECONNREFUSED' },
  archive: { lastSegment: '000000010000000000000004', histories: [] },
  ...over,
});

describe('archiveEndOf', () => {
  it("finds the newest segment on the standby's timeline, a later timeline's, and the histories", () => {
    const names = [
      '000000010000000000000003',
      '000000010000000000000004',
      '000000010000000000000002.00000028.backup',
      '000000010000000000000005.partial',
      '00000002.history',
      '000000020000000000000005',
    ];
    expect(archiveEndOf(names, 1)).toEqual({
      lastSegment: '000000010000000000000004',
      newerSegment: '000000020000000000000005',
      histories: [2],
    });
    expect(archiveEndOf(names, 2)).toEqual({ lastSegment: '000000020000000000000005', histories: [2] });
    expect(archiveEndOf([], 1)).toEqual({ histories: [] });
  });
});

describe('judgePromotion', () => {
  it('caught up when replay reached the end of the last archived segment, or beyond', () => {
    expect(judgePromotion(look())).toMatchObject({ caughtUp: true, behindBytes: 0, archiveEnd: '0/5000000' });
    expect(judgePromotion(look({ replayLsn: '0/50000A0' })).caughtUp).toBe(true);
  });

  it('behind by the bytes and segments not replayed; one byte short is behind', () => {
    expect(judgePromotion(look({ replayLsn: '0/4FFFFFF' }))).toMatchObject({
      caughtUp: false,
      behindBytes: 1,
      behindSegments: 1,
    });
    const j = judgePromotion(look({ replayLsn: '0/3800000', replayPaused: true }));
    expect(j).toMatchObject({ caughtUp: false, behindBytes: 24 * 1048576, behindSegments: 2 });
    expect(j.detail).toMatch(/24\.0 MiB \(2 segments\) behind the archive.*replay is paused/);
  });

  it('a primary up and not in recovery is a split-brain warning; unreachable only a note', () => {
    const up = judgePromotion(
      look({ primary: { address: 'db1:5432', reachable: true, inRecovery: false, currentLsn: '0/5000100' } }),
    );
    expect(up.warnings.join()).toMatch(/IS UP AND NOT IN RECOVERY.*split brain/);
    expect(up.notes.join()).toMatch(/beyond what the standby received/);
    const down = judgePromotion(look());
    expect(down.warnings).toEqual([]);
    expect(down.notes.join()).toMatch(/db1:5432 is unreachable \(ECONNREFUSED\)/);
  });

  it('a later timeline in the archive (a history, or WAL) is a second promotion; no restore_command to see it is another', () => {
    const archive = { lastSegment: '000000010000000000000004', histories: [1, 3] };
    const seen = judgePromotion(look({ archive })).warnings;
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(
      /^the archive holds the history of timeline 3, later than the standby's 1.*second promotion/,
    );
    expect(judgePromotion(look({ archive: { ...archive, histories: [1] } })).warnings).toEqual([]);
    const noRestore = judgePromotion(look({ archive: { ...archive, histories: [2] }, hasRestoreCommand: false }));
    expect(noRestore.warnings.join(' | ')).toMatch(/timeline 2, later.* \| the standby has no restore_command/);
    const walOnly = {
      lastSegment: '000000010000000000000004',
      newerSegment: '000000020000000000000005',
      histories: [],
    };
    expect(judgePromotion(look({ archive: walOnly })).warnings.join()).toMatch(
      /holds WAL of timeline 2 \(000000020000000000000005\), later/,
    );
  });

  it('another configured standby out of recovery is a warning; no WAL of its timeline in the archive is one', () => {
    expect(judgePromotion(look({ otherPrimaries: ['replica2 (db3:5432)'] })).warnings.join()).toMatch(
      /^ANOTHER CONFIGURED STANDBY, replica2 \(db3:5432\), ANSWERS AND IS NOT IN RECOVERY/,
    );
    const empty = judgePromotion(look({ archive: { histories: [] } }));
    expect(empty.caughtUp).toBe(true);
    expect(empty.warnings.join()).toMatch(/archive holds no WAL of timeline 1.*this worker's repository/);
  });

  it('notes what it received and has not replayed (receive − replay)', () => {
    const j = judgePromotion(look({ receiveLsn: '0/9000000', replayLsn: '0/5000000' }));
    expect(j.notes.join()).toMatch(/received 64\.0 MiB of WAL it has not replayed yet/);
    expect(judgePromotion(look()).notes.join()).not.toMatch(/not replayed/);
  });

  it('the approval text puts warnings first and says what is lost when behind', () => {
    const l = look({
      replayLsn: '0/4000000',
      primary: { address: 'db1:5432', reachable: true, inRecovery: false, currentLsn: null },
    });
    const text = promotionApprovalText('main', l, judgePromotion(l));
    expect(text).toMatch(/^WARNING: THE PRIMARY db1:5432 IS UP/);
    expect(text).toMatch(
      /LAST 16\.0 MiB OF ARCHIVED WAL \(1 segment, from 0\/4000000 to 0\/5000000\) IS NOT ON THE NEW PRIMARY/,
    );
  });
});

describe("staleApproval (promote's second look)", () => {
  const up = { address: 'db1:5432', reachable: true as const, inRecovery: false, currentLsn: '0/5000100' };
  const approved = (l: PromotionLook, allowBehindArchive = false) => ({
    warnings: judgePromotion(l).warnings,
    allowBehindArchive,
  });

  it('refuses a danger the approval did not carry: the primary up again, another standby promoted', () => {
    const plan = approved(look());
    expect(staleApproval(judgePromotion(look()), plan)).toBeUndefined();
    expect(staleApproval(judgePromotion(look({ primary: up })), plan)).toMatch(
      /THE PRIMARY db1:5432 IS UP.*\(not in the approval\)/,
    );
    const withReplica2 = approved(look({ otherPrimaries: ['replica2 (db3:5432)'] }));
    expect(
      staleApproval(judgePromotion(look({ otherPrimaries: ['replica2 (db3:5432)'] })), withReplica2),
    ).toBeUndefined();
    expect(staleApproval(judgePromotion(look({ otherPrimaries: ['replica3 (db4:5432)'] })), withReplica2)).toMatch(
      /replica3/,
    );
  });

  it('the same warnings with other numbers are not new; the split brain approved stays approved', () => {
    const plan = approved(look({ primary: up }));
    const later = look({
      primary: { ...up, currentLsn: '0/7000000' },
      archive: { lastSegment: '000000010000000000000004', histories: [] },
    });
    expect(staleApproval(judgePromotion(later), plan)).toBeUndefined();
  });

  it('behind the archive now: refused unless allowBehindArchive', () => {
    const behind = judgePromotion(look({ replayLsn: '0/4000000' }));
    expect(staleApproval(behind, approved(look()))).toMatch(/^it is 16\.0 MiB \(1 segment\) behind the archive/);
    expect(staleApproval(behind, approved(look(), true))).toBeUndefined();
  });
});

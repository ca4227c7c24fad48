// promoteStandby's judgement: caught up to the archive or by how much behind, and what the approver
// must be warned of.
import { describe, expect, it } from 'vitest';
import { archiveEndOf, judgePromotion, promotionApprovalText, type PromotionLook } from '../../src/lib/promotion.js';

const look = (over: Partial<PromotionLook> = {}): PromotionLook => ({
  standby: 'replica1',
  address: 'db2:5432',
  inRecovery: true,
  timeline: 1,
  receiveLsn: '0/5000000',
  replayLsn: '0/5000000',
  replayPaused: false,
  restoreCommand: 'pgwarden wal-get %f %p',
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

  it('warns when the archive already holds the next timeline and the standby cannot see it', () => {
    const archive = { lastSegment: '000000010000000000000004', histories: [2] };
    expect(judgePromotion(look({ archive, restoreCommand: '' })).warnings.join()).toMatch(
      /already holds timeline 2's history/,
    );
    expect(judgePromotion(look({ archive })).warnings).toEqual([]);
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

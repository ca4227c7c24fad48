// The last WAL segment a base backup needs, from its stop LSN: a standby's backup may end exactly on a
// segment boundary (its last replayed record a WAL switch), and then needs nothing of the next one.
import { expect, it } from 'vitest';
import { backupSegments, lastSegmentOf } from '../../src/activities/baseFromStandby.js';
import { planRecoveryPath } from '../../src/lib/recoveryPath.js';

it('the segment holding the byte before the stop LSN', () => {
  expect(lastSegmentOf(1, '0/3000060')).toBe('000000010000000000000003');
  expect(lastSegmentOf(1, '0/3000000')).toBe('000000010000000000000002');
  expect(lastSegmentOf(2, '1/0')).toBe('0000000200000000000000FF');
  expect(lastSegmentOf(1, '1/1')).toBe('000000010000000100000000');
});

it('every segment from the one holding the start to the last one, each waited for by its own record', () => {
  expect(backupSegments(1, '0/2000028', '0/4000100')).toEqual([
    '000000010000000000000002',
    '000000010000000000000003',
    '000000010000000000000004',
  ]);
  expect(backupSegments(1, '0/2000028', '0/3000000')).toEqual(['000000010000000000000002']);
});

it("PITR's plan: a standby's backup stopping on a segment boundary is restorable with the WAL before it", () => {
  const backup = {
    backupId: '20261125T050000Z',
    timeline: 1,
    startLsn: '0/2000028',
    stopLsn: '0/3000000',
    finishedAt: '2026-11-25T05:00:05Z',
  };
  const wal = ['000000010000000000000001', '000000010000000000000002'].map((name) => ({
    name,
    archivedAt: '2026-11-25T05:00:06Z',
  }));
  const now = new Date('2026-11-25T06:00:00Z');
  const path = planRecoveryPath({ target: { latest: true }, backups: [backup], wal, histories: new Map(), now });
  expect(path).toMatchObject({ walFiles: ['000000010000000000000002'], lastSegment: '000000010000000000000002' });
  // Once the primary writes on, the next segment is part of "latest" as before.
  const more = [...wal, { name: '000000010000000000000003', archivedAt: '2026-11-25T05:30:00Z' }];
  expect(
    planRecoveryPath({ target: { latest: true }, backups: [backup], wal: more, histories: new Map(), now }),
  ).toMatchObject({ lastSegment: '000000010000000000000003' });
});

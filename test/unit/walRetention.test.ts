import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatLsn, parseSegmentName, segmentName, WAL_SEGMENT_BYTES } from '../../src/lib/wal.js';
import { planWalRetention, type RetainedBaseBackup } from '../../src/lib/walRetention.js';

const seg = (timeline: number, n: number) => segmentName(timeline, BigInt(n));
const backup = (backupId: string, startLsn: string, timeline = 1): RetainedBaseBackup => ({ backupId, timeline, startLsn });
const deleted = (files: string[], backups: RetainedBaseBackup[]) => planWalRetention(files, backups).delete.map((d) => d.name);

describe('WAL retention', () => {
  const archive = [seg(1, 1), seg(1, 2), seg(1, 3), seg(1, 4), seg(1, 5), seg(1, 6), '00000002.history', seg(2, 6), seg(2, 7)];

  it('deletes nothing when there is no base backup', () => {
    const d = planWalRetention(archive, []);
    expect(d.delete).toEqual([]);
    expect(d.keep).toEqual([...archive].sort());
    expect(d.keepFrom).toBeUndefined();
  });

  it("keeps the oldest backup's start segment and everything after it, and says why the rest goes", () => {
    const d = planWalRetention(archive, [backup('20261123T020000Z', '0/6000028'), backup('20261122T020000Z', '0/4000028')]);
    expect(d.keepFrom).toEqual({ backupId: '20261122T020000Z', segment: seg(1, 4) });
    expect(d.delete.map((x) => x.name)).toEqual([seg(1, 1), seg(1, 2), seg(1, 3)]);
    expect(d.delete[0]!.reason).toBe(`before ${seg(1, 4)}, the start of the oldest base backup 20261122T020000Z`);
    expect(d.keep).toEqual(expect.arrayContaining([seg(1, 4), seg(1, 5), seg(1, 6), seg(2, 6), seg(2, 7)]));
  });

  it('picks the oldest backup by start LSN, not by list order or id', () => {
    expect(deleted(archive, [backup('20261125T020000Z', '0/3000000'), backup('20261124T020000Z', '0/5FFFFFF')])).toEqual([seg(1, 1), seg(1, 2)]);
  });

  it('applies the cut on every timeline, and to backup label files', () => {
    const files = [seg(1, 2), seg(2, 2), seg(3, 5), '000000010000000000000002.00000028.backup', '000000010000000000000005.00000060.backup'];
    expect(deleted(files, [backup('b', '0/5000028', 3)])).toEqual(['000000010000000000000002', '000000010000000000000002.00000028.backup', seg(2, 2)]);
  });

  it('keeps history and partial files however old', () => {
    const files = ['00000002.history', '00000003.history', `${seg(1, 1)}.partial`, seg(1, 1)];
    expect(deleted(files, [backup('b', '0/9000000', 3)])).toEqual([seg(1, 1)]);
  });

  it('compares segments across the 4 GiB xlogid boundary', () => {
    const files = [seg(1, 255), seg(1, 256), seg(1, 257)];
    expect(seg(1, 256)).toBe('000000010000000100000000');
    expect(deleted(files, [backup('b', '1/28')])).toEqual([seg(1, 255)]);
  });

  it('never deletes a segment at or after any backup start (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ tli: fc.integer({ min: 1, max: 3 }), n: fc.integer({ min: 0, max: 600 }) }), { maxLength: 40 }),
        fc.array(fc.record({ tli: fc.integer({ min: 1, max: 3 }), lsn: fc.bigInt({ min: 0n, max: 600n * BigInt(WAL_SEGMENT_BYTES) }) }), { maxLength: 4 }),
        (files, backups) => {
          const names = files.map((f) => seg(f.tli, f.n));
          const d = planWalRetention(names, backups.map((b, i) => backup(`b${i}`, formatLsn(b.lsn), b.tli)));
          const minStart = backups.reduce((m, b) => (b.lsn < m ? b.lsn : m), BigInt(Number.MAX_SAFE_INTEGER)) / BigInt(WAL_SEGMENT_BYTES);
          for (const { name } of d.delete) expect(parseSegmentName(name)!.segment).toBeLessThan(minStart);
          for (const name of d.keep) if (backups.length) expect(parseSegmentName(name)!.segment >= minStart).toBe(true);
          expect(d.delete.length + d.keep.length).toBe(names.length);
        },
      ),
    );
  });
});

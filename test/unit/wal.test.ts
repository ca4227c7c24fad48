// WAL arithmetic against PostgreSQL's own facts: LSN text <-> byte position, the 16 MiB segment that
// holds an LSN and its 24-hex-digit file name (timeline, xlogid, segment-in-xlogid), the timeline
// history file format, and which timeline's copy of each segment recovery reads — the segment holding
// a switch point belongs to the child timeline.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BACKUP_LABEL_NAME,
  formatLsn,
  HISTORY_NAME,
  historyFileName,
  isLsn,
  isWalFileName,
  PARTIAL_NAME,
  parseHistory,
  parseLsn,
  parseSegmentName,
  SEGMENT_NAME,
  segmentName,
  segmentOf,
  segmentsBetween,
  timelineAt,
  timelinePath,
  WAL_SEGMENT_BYTES,
} from '../../src/lib/wal.js';

/** Timeline 3's history file: 1 -> 2 at 0/3000060, 2 -> 3 at 0/5000100. */
const TL3_HISTORY = '1\t0/3000060\tno recovery target specified\n2\t0/5000100\tbefore 2026-11-22 14:31:00+00\n';
const lsn = parseLsn;

describe('LSNs', () => {
  it('parse as (xlogid << 32) | offset', () => {
    expect(WAL_SEGMENT_BYTES).toBe(16_777_216);
    expect(parseLsn('0/3000060')).toBe(0x3000060n);
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(parseLsn('1/0')).toBe(0x1_0000_0000n);
    expect(parseLsn('0/0')).toBe(0n);
    expect(parseLsn('FFFFFFFF/FFFFFFFF')).toBe(0xffff_ffff_ffff_ffffn);
    expect(parseLsn('16/b374d848')).toBe(parseLsn('16/B374D848'));
    expect(parseLsn(' 0/3000060\n')).toBe(0x3000060n);
  });

  it('refuse text that is not an LSN', () => {
    for (const bad of [
      '',
      '0',
      '0/',
      '/0',
      '1/2/3',
      '123456789/0',
      '0/123456789',
      '0x1/0',
      'G/0',
      '-1/0',
      '0 /1',
      '0/3000060 junk',
    ]) {
      expect(() => parseLsn(bad), bad).toThrow(/is not an LSN/);
      expect(isLsn(bad), bad).toBe(false);
    }
    expect(isLsn('16/B374D848')).toBe(true);
    expect(isLsn('0/0')).toBe(true);
  });

  it('format as PostgreSQL prints them: upper-case hex, no padding', () => {
    expect(formatLsn(0x3000060n)).toBe('0/3000060');
    expect(formatLsn(0n)).toBe('0/0');
    expect(formatLsn(0x1_0000_0000n)).toBe('1/0');
    expect(formatLsn((0x16n << 32n) | 0xb374d848n)).toBe('16/B374D848');
    expect(formatLsn(0xffff_ffff_ffff_ffffn)).toBe('FFFFFFFF/FFFFFFFF');
  });

  it('round-trip through text for every 64-bit position', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn }), (pos) => {
        const text = formatLsn(pos);
        expect(isLsn(text)).toBe(true);
        expect(parseLsn(text)).toBe(pos);
        expect(formatLsn(parseLsn(text.toLowerCase()))).toBe(text);
      }),
    );
  });
});

describe('segments (16 MiB)', () => {
  it('hold the LSNs PostgreSQL puts in them', () => {
    expect(segmentOf(lsn('0/3000060'))).toBe(3n);
    expect(segmentOf(lsn('0/3000000'))).toBe(3n); // first byte of segment 3
    expect(segmentOf(lsn('0/2FFFFFF'))).toBe(2n); // last byte of segment 2
    expect(segmentOf(lsn('0/FFFFFFFF'))).toBe(255n);
    expect(segmentOf(lsn('1/0'))).toBe(256n);
    expect(segmentOf(lsn('16/B374D848'))).toBe(0x16n * 256n + 0xb3n);
  });

  it('are named timeline + xlogid + segment-in-xlogid, 8 upper-case hex digits each', () => {
    expect(segmentName(1, segmentOf(lsn('0/3000060')))).toBe('000000010000000000000003');
    expect(segmentName(1, segmentOf(lsn('1/0')))).toBe('000000010000000100000000');
    expect(segmentName(1, 255n)).toBe('0000000100000000000000FF');
    expect(segmentName(1, 257n)).toBe('000000010000000100000001');
    expect(segmentName(2, 0n)).toBe('000000020000000000000000');
    expect(segmentName(0x1a, segmentOf(lsn('16/B374D848')))).toBe('0000001A00000016000000B3');
    expect(segmentName(0xffffffff, 0xffffffffn * 256n + 255n)).toBe('FFFFFFFFFFFFFFFF000000FF');
  });

  it('parse back from their names', () => {
    expect(parseSegmentName('000000010000000000000003')).toEqual({ timeline: 1, segment: 3n });
    expect(parseSegmentName('000000010000000100000000')).toEqual({ timeline: 1, segment: 256n });
    expect(parseSegmentName('0000001A00000016000000B3')).toEqual({ timeline: 26, segment: 0x16n * 256n + 0xb3n });
  });

  it('round-trip name <-> (timeline, segment)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 0xffffffff }),
        fc.bigInt({ min: 0n, max: 0xffffffffn * 256n + 255n }),
        (tli, seg) => {
          const name = segmentName(tli, seg);
          expect(name).toMatch(SEGMENT_NAME);
          expect(parseSegmentName(name)).toEqual({ timeline: tli, segment: seg });
        },
      ),
    );
  });

  it('refuse names that are not 16 MiB segment names', () => {
    for (const bad of [
      '00000002.history',
      '000000010000000000000002.00000028.backup',
      '000000010000000000000003.partial',
      '00000001000000000000003', // 23 digits
      '0000000100000000000000030', // 25 digits
      '00000001000000000000000a', // PostgreSQL writes upper case
      // The low part of a 16 MiB segment runs 00..FF: 0x100 would alias 000000010000000100000000.
      '000000010000000000000100',
      '0000000100000000FFFFFFFF',
    ]) {
      expect(parseSegmentName(bad), bad).toBeUndefined();
    }
  });
});

describe('WAL file names', () => {
  it('cover everything archive_command is handed, and nothing else', () => {
    for (const good of [
      '000000010000000000000003',
      '00000002.history',
      '000000010000000000000002.00000028.backup',
      '000000010000000000000003.partial',
    ]) {
      expect(isWalFileName(good), good).toBe(true);
    }
    for (const bad of [
      '',
      'archive_status',
      '00000002.history.tmp',
      '0000000a.history',
      '000000010000000000000003.partial.gz',
      '../00000002.history',
      'x000000010000000000000003',
    ]) {
      expect(isWalFileName(bad), bad).toBe(false);
    }
    expect(HISTORY_NAME.exec('00000002.history')?.[1]).toBe('00000002');
    expect(BACKUP_LABEL_NAME.test('000000010000000000000002.00000028.backup')).toBe(true);
    expect(PARTIAL_NAME.test('000000010000000000000003.partial')).toBe(true);
  });

  it('name history files by their timeline', () => {
    expect(historyFileName(2)).toBe('00000002.history');
    expect(historyFileName(31)).toBe('0000001F.history');
    expect(historyFileName(2)).toMatch(HISTORY_NAME);
  });
});

describe('timeline history files', () => {
  it('parse to the parent timelines and their switch points, oldest first', () => {
    expect(parseHistory(TL3_HISTORY)).toEqual([
      { parent: 1, switchpoint: 0x3000060n },
      { parent: 2, switchpoint: 0x5000100n },
    ]);
  });

  it('tolerate blank lines, comments, CRLF and a missing reason', () => {
    const text = '# written by hand\r\n\r\n1\t0/3000060\tno recovery target specified\r\n   \n2 0/5000100\n';
    expect(parseHistory(text)).toEqual([
      { parent: 1, switchpoint: 0x3000060n },
      { parent: 2, switchpoint: 0x5000100n },
    ]);
    expect(parseHistory('')).toEqual([]);
  });

  it('refuse lines that are not "timeline<TAB>LSN<TAB>reason"', () => {
    for (const bad of [
      '1',
      '1\tnot-an-lsn\treason',
      'one\t0/3000060\treason',
      '-1\t0/3000060',
      '1.5\t0/3000060',
      '0/3000060\t1',
    ]) {
      expect(() => parseHistory(bad), bad).toThrow(/bad timeline history line/);
    }
    // One bad line spoils the file.
    expect(() => parseHistory(`${TL3_HISTORY}garbage\n`)).toThrow(/garbage/);
  });
});

describe('timeline paths', () => {
  const path3 = timelinePath(3, parseHistory(TL3_HISTORY));

  it('run through the ancestors in LSN order, the target last and open-ended', () => {
    expect(path3).toEqual([
      { timeline: 1, from: 0n, to: 0x3000060n },
      { timeline: 2, from: 0x3000060n, to: 0x5000100n },
      { timeline: 3, from: 0x5000100n },
    ]);
    expect(timelinePath(1, [])).toEqual([{ timeline: 1, from: 0n }]);
  });

  it('give a switch point to the child timeline', () => {
    expect(timelineAt(path3, 0n)).toBe(1);
    expect(timelineAt(path3, lsn('0/3000060') - 1n)).toBe(1);
    expect(timelineAt(path3, lsn('0/3000060'))).toBe(2);
    expect(timelineAt(path3, lsn('0/5000100') - 1n)).toBe(2);
    expect(timelineAt(path3, lsn('0/5000100'))).toBe(3);
    expect(timelineAt(path3, lsn('FFFFFFFF/FFFFFFFF'))).toBe(3);
    expect(timelineAt(timelinePath(1, []), lsn('16/B374D848'))).toBe(1);
  });
});

describe('segments between two LSNs', () => {
  const path3 = timelinePath(3, parseHistory(TL3_HISTORY));

  it('read a single timeline segment by segment, both ends included', () => {
    const path1 = timelinePath(1, []);
    expect(segmentsBetween(path1, lsn('0/2000028'), lsn('0/4000000'))).toEqual([
      '000000010000000000000002',
      '000000010000000000000003',
      '000000010000000000000004',
    ]);
    expect(segmentsBetween(path1, lsn('0/3000060'), lsn('0/3000060'))).toEqual(['000000010000000000000003']);
    expect(segmentsBetween(path1, lsn('0/4000000'), lsn('0/3000000'))).toEqual([]);
  });

  it('cross an xlogid boundary', () => {
    expect(segmentsBetween(timelinePath(1, []), lsn('0/FF000000'), lsn('1/1000000'))).toEqual([
      '0000000100000000000000FF',
      '000000010000000100000000',
      '000000010000000100000001',
    ]);
  });

  it("take each switch point's segment from the child timeline", () => {
    // 0/3000060 lies in segment 3 and 0/5000100 in segment 5.
    expect(segmentsBetween(path3, lsn('0/2000028'), lsn('0/6000000'))).toEqual([
      '000000010000000000000002',
      '000000020000000000000003',
      '000000020000000000000004',
      '000000030000000000000005',
      '000000030000000000000006',
    ]);
  });

  it('keep the parent up to a switch point that falls on a segment boundary', () => {
    const path = timelinePath(2, parseHistory('1\t0/5000000\treason\n'));
    expect(segmentsBetween(path, lsn('0/4000000'), lsn('0/5FFFFFF'))).toEqual([
      '000000010000000000000004',
      '000000020000000000000005',
    ]);
  });

  it('skip a timeline that lived and died inside one segment', () => {
    // Timeline 2 ran from 0/3000060 to 0/3000100: segment 3 is read from timeline 3, as PostgreSQL does.
    const path = timelinePath(3, parseHistory('1\t0/3000060\treason\n2\t0/3000100\treason\n'));
    expect(segmentsBetween(path, lsn('0/2000000'), lsn('0/4000000'))).toEqual([
      '000000010000000000000002',
      '000000030000000000000003',
      '000000030000000000000004',
    ]);
  });

  it('name every segment once, consecutively, on a timeline that never goes back', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 0x4_0000_0000n }),
        fc.bigInt({ min: 0n, max: 0x2000_0000n }),
        fc.array(fc.bigInt({ min: 1n, max: 0x4_0000_0000n }), { maxLength: 4 }),
        (start, length, switches) => {
          const history = [...new Set(switches)]
            .sort((a, b) => (a < b ? -1 : 1))
            .map((switchpoint, i) => ({ parent: i + 1, switchpoint }));
          const path = timelinePath(history.length + 1, history);
          const names = segmentsBetween(path, start, start + length);
          expect(BigInt(names.length)).toBe(segmentOf(start + length) - segmentOf(start) + 1n);
          const parsed = names.map((n) => parseSegmentName(n)!);
          parsed.forEach((p, i) => {
            expect(p.segment).toBe(segmentOf(start) + BigInt(i));
            // The segment's last byte decides: the newest timeline that has begun by then.
            expect(p.timeline).toBe(timelineAt(path, (p.segment + 1n) * BigInt(WAL_SEGMENT_BYTES) - 1n));
            if (i > 0) expect(p.timeline).toBeGreaterThanOrEqual(parsed[i - 1]!.timeline);
          });
        },
      ),
    );
  });
});

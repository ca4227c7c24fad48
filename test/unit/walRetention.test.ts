import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatLsn, parseSegmentName, segmentName, WAL_SEGMENT_BYTES } from '../../src/lib/wal.js';
import type { RecoveryTarget } from '../../src/lib/recovery.js';
import { planRecoveryPath } from '../../src/lib/recoveryPath.js';
import { parseWindow, planWalRetention, type RetainedBaseBackup } from '../../src/lib/walRetention.js';

const seg = (timeline: number, n: number) => segmentName(timeline, BigInt(n));
const backup = (backupId: string, startLsn: string, timeline = 1): RetainedBaseBackup => ({
  backupId,
  timeline,
  startLsn,
});
const deleted = (files: string[], backups: RetainedBaseBackup[]) =>
  planWalRetention(files, backups).delete.map((d) => d.name);

describe('WAL retention', () => {
  const archive = [
    seg(1, 1),
    seg(1, 2),
    seg(1, 3),
    seg(1, 4),
    seg(1, 5),
    seg(1, 6),
    '00000002.history',
    seg(2, 6),
    seg(2, 7),
  ];

  it('deletes nothing when there is no base backup', () => {
    const d = planWalRetention(archive, []);
    expect(d.delete).toEqual([]);
    expect(d.keep).toEqual([...archive].sort());
    expect(d.keepFrom).toBeUndefined();
  });

  it("keeps the oldest backup's start segment and everything after it, and says why the rest goes", () => {
    const d = planWalRetention(archive, [
      backup('20261123T020000Z', '0/6000028'),
      backup('20261122T020000Z', '0/4000028'),
    ]);
    expect(d.keepFrom).toEqual({ backupId: '20261122T020000Z', segment: seg(1, 4) });
    expect(d.delete.map((x) => x.name)).toEqual([seg(1, 1), seg(1, 2), seg(1, 3)]);
    expect(d.delete[0]!.reason).toBe(`before ${seg(1, 4)}, the start of the oldest base backup 20261122T020000Z`);
    expect(d.keep).toEqual(expect.arrayContaining([seg(1, 4), seg(1, 5), seg(1, 6), seg(2, 6), seg(2, 7)]));
  });

  it('picks the oldest backup by start LSN, not by list order or id', () => {
    expect(
      deleted(archive, [backup('20261125T020000Z', '0/3000000'), backup('20261124T020000Z', '0/5FFFFFF')]),
    ).toEqual([seg(1, 1), seg(1, 2)]);
  });

  it('applies the cut on every timeline, and to backup label files', () => {
    const files = [
      seg(1, 2),
      seg(2, 2),
      seg(3, 5),
      '000000010000000000000002.00000028.backup',
      '000000010000000000000005.00000060.backup',
    ];
    expect(deleted(files, [backup('b', '0/5000028', 3)])).toEqual([
      '000000010000000000000002',
      '000000010000000000000002.00000028.backup',
      seg(2, 2),
    ]);
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
        fc.array(fc.record({ tli: fc.integer({ min: 1, max: 3 }), n: fc.integer({ min: 0, max: 600 }) }), {
          maxLength: 40,
        }),
        fc.array(
          fc.record({
            tli: fc.integer({ min: 1, max: 3 }),
            lsn: fc.bigInt({ min: 0n, max: 600n * BigInt(WAL_SEGMENT_BYTES) }),
          }),
          { maxLength: 4 },
        ),
        (files, backups) => {
          const names = files.map((f) => seg(f.tli, f.n));
          const d = planWalRetention(
            names,
            backups.map((b, i) => backup(`b${i}`, formatLsn(b.lsn), b.tli)),
          );
          const minStart =
            backups.reduce((m, b) => (b.lsn < m ? b.lsn : m), BigInt(Number.MAX_SAFE_INTEGER)) /
            BigInt(WAL_SEGMENT_BYTES);
          for (const { name } of d.delete) expect(parseSegmentName(name)!.segment).toBeLessThan(minStart);
          for (const name of d.keep) if (backups.length) expect(parseSegmentName(name)!.segment >= minStart).toBe(true);
          expect(d.delete.length + d.keep.length).toBe(names.length);
        },
      ),
    );
  });
});

describe('WAL retention with a PITR window', () => {
  // Weekly backups (each 1 segment of WAL from start to stop) and 10 segments a day: backup k starts at segment 70k + 1.
  const NOW = new Date('2026-12-01T00:00:00Z');
  const DAY = 86_400_000;
  const weekly = (k: number, tli = 1) => ({
    backupId: `w${k}`,
    timeline: tli,
    startLsn: formatLsn(BigInt(70 * k + 1) * BigInt(WAL_SEGMENT_BYTES) + 0x28n),
    stopLsn: formatLsn(BigInt(70 * k + 2) * BigInt(WAL_SEGMENT_BYTES) + 0x100n),
    finishedAt: new Date(NOW.getTime() - (35 - 7 * k) * DAY).toISOString(),
  });
  const backups = [0, 1, 2, 3, 4].map((k) => weekly(k)); // 35, 28, 21, 14, 7 days old
  const all = Array.from({ length: 350 }, (_, i) => seg(1, i + 1));
  const window = { ms: parseWindow('14 days')!, now: NOW };

  it('keeps continuous WAL from the newest backup that ended before the window, and only start → stop of older ones', () => {
    const d = planWalRetention(
      [...all, '000000010000000000000047.00000028.backup', '00000002.history'],
      backups,
      window,
    );
    expect(d.keepFrom).toEqual({ backupId: 'w3', segment: seg(1, 211) });
    expect(d.ranges).toEqual([
      { backupId: 'w0', from: seg(1, 1), to: seg(1, 2) },
      { backupId: 'w1', from: seg(1, 71), to: seg(1, 72) },
      { backupId: 'w2', from: seg(1, 141), to: seg(1, 142) },
    ]);
    const kept = new Set(d.keep);
    for (let i = 211; i <= 350; i++) expect(kept.has(seg(1, i))).toBe(true);
    for (const i of [1, 2, 71, 72, 141, 142]) expect(kept.has(seg(1, i))).toBe(true);
    expect(kept.has('000000010000000000000047.00000028.backup')).toBe(true); // w1's label (0x47 = 71)
    expect(kept.has('00000002.history')).toBe(true);
    expect(d.keep).toHaveLength(140 + 6 + 2);
    expect(d.delete.map((x) => x.name)).toContain(seg(1, 3));
    expect(d.delete.find((x) => x.name === seg(1, 143))!.reason).toBe(
      `before ${seg(1, 211)}, the start of the PITR window (base backup w3), outside every older base backup's start → stop range`,
    );
  });

  it('keeps the oldest backup continuous while none is older than the window', () => {
    const d = planWalRetention(all, backups.slice(3), window);
    expect(d.keepFrom?.backupId).toBe('w3');
    expect(planWalRetention(all, [weekly(4)], { ms: parseWindow('3 days')!, now: NOW }).keepFrom?.backupId).toBe('w4');
    expect(planWalRetention(all, [weekly(4)], { ms: parseWindow('30 days')!, now: NOW }).keepFrom?.backupId).toBe('w4');
  });

  it('treats a backup without a stop LSN as needing everything after its start', () => {
    const { stopLsn: _s, ...open } = weekly(1);
    expect(planWalRetention(all, [weekly(0), open, ...backups.slice(2)], window).keepFrom?.backupId).toBe('w1');
  });

  it('keeps a range by segment number on every timeline (a backup on timeline 2 needs its own names)', () => {
    const files = [seg(1, 71), seg(2, 71), seg(2, 72), seg(2, 73), seg(1, 73)];
    const d = planWalRetention(files, [weekly(1, 2), weekly(3)], window);
    expect(d.delete.map((x) => x.name).sort()).toEqual([seg(1, 73), seg(2, 73)].sort());
  });

  describe('after a PITR to a point older than the window anchor', () => {
    // Timeline 1: B0 at segment 20 (30 days ago), B1 at segment 80 (20 days ago, the window's anchor),
    // WAL up to segment 100. 12 days ago the cluster was recovered to segment 50: timeline 2 starts
    // there. B2 on timeline 2 at segment 55 (10 days ago); timeline 2 now at segment 90.
    const at = (n: number) => formatLsn(BigInt(n) * BigInt(WAL_SEGMENT_BYTES));
    const ago = (days: number) => new Date(NOW.getTime() - days * DAY).toISOString();
    const b = (backupId: string, timeline: number, start: number, days: number) => ({
      backupId,
      timeline,
      startLsn: at(start),
      stopLsn: at(start + 1),
      finishedAt: ago(days),
    });
    const pitrBackups = [b('B0', 1, 20, 30), b('B1', 1, 80, 20), b('B2', 2, 55, 10)];
    const history = [{ parent: 1, switchpoint: BigInt(50) * BigInt(WAL_SEGMENT_BYTES) }];
    const files = [
      ...Array.from({ length: 81 }, (_, i) => seg(1, 20 + i)),
      '00000002.history',
      ...Array.from({ length: 41 }, (_, i) => seg(2, 50 + i)),
    ];
    const timelines = [{ timeline: 2, history, archivedAt: ago(12) }];
    const recoverable = (kept: string[], target: RecoveryTarget, liveTimeline = 2) =>
      planRecoveryPath({
        target,
        backups: pitrBackups,
        wal: kept.map((name) => ({ name, archivedAt: NOW.toISOString() })),
        histories: new Map([[2, history]]),
        now: NOW,
        liveTimeline,
      });

    it('keeps every moment of the live timeline inside the window recoverable, and the newest backup replayable to now', () => {
      const d = planWalRetention(files, pitrBackups, { ...window, timelines });
      // Timeline 2's first moments (before B2) replay from B0 on timeline 1, across the switch.
      expect(d.keepFrom?.backupId).toBe('B0');
      expect(d.delete.filter((x) => x.name.startsWith('00000002'))).toEqual([]);
      for (const segment of [51, 54, 56, 70, 90])
        expect(recoverable(d.keep, { lsn: at(segment) }).lastSegment).toBe(seg(2, segment));
      expect(recoverable(d.keep, { latest: true }).lastSegment).toBe(seg(2, 90));
      expect(recoverable(d.keep, { lsn: at(52) }).backup.backupId).toBe('B0');
      // The abandoned end of timeline 1 (days -14 to -12) stays too.
      expect(recoverable(d.keep, { lsn: at(99) }, 1).lastSegment).toBe(seg(1, 99));
    });

    it('keeps at least as much when the history file cannot be read here (encrypted, no private key)', () => {
      const d = planWalRetention(files, pitrBackups, { ...window, timelines: [{ timeline: 2, archivedAt: ago(12) }] });
      expect(d.keepFrom?.backupId).toBe('B0');
      expect(recoverable(d.keep, { lsn: at(52) }).backup.backupId).toBe('B0');
      expect(recoverable(d.keep, { latest: true }).lastSegment).toBe(seg(2, 90));
    });

    it("without the timeline's history, the newest backup still replays to now, but the moments before it do not", () => {
      // Without the timeline, B2 still keeps its own WAL to now: a backup that finished after the anchor.
      const d = planWalRetention(files, pitrBackups, window);
      expect(recoverable(d.keep, { latest: true }).backup.backupId).toBe('B2');
      expect(() => recoverable(d.keep, { lsn: at(52) })).toThrow();
    });

    it('lets the extra WAL go once a backup on the new timeline is older than the window', () => {
      const later = { ms: window.ms, now: new Date(NOW.getTime() + 5 * DAY), timelines };
      const d = planWalRetention(files, pitrBackups, later);
      expect(d.keepFrom).toEqual({ backupId: 'B2', segment: seg(2, 55) });
      expect(d.delete.map((x) => x.name)).toContain(seg(2, 52));
      // A timeline created before the anchor finished adds nothing.
      expect(
        planWalRetention(files, pitrBackups.slice(0, 2), {
          ...window,
          timelines: [{ ...timelines[0]!, archivedAt: ago(25) }],
        }).keepFrom?.backupId,
      ).toBe('B1');
    });
  });

  it('parses windows in days and hours, refuses the rest', () => {
    expect(parseWindow('14 days')).toBe(14 * DAY);
    expect(parseWindow('1 day')).toBe(DAY);
    expect(parseWindow('36 hours')).toBe(36 * 3_600_000);
    expect(parseWindow('2d')).toBe(2 * DAY);
    for (const bad of ['', '14', 'two weeks', '0 days', '-1 days']) expect(parseWindow(bad)).toBeUndefined();
  });

  it('never deletes WAL a kept backup needs, nor any WAL after the window anchor (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 40 }),
        (ages, windowDays) => {
          // A backup `age` days old starts at segment 10*(50-age) and stops 3 segments later.
          const bs = [...new Set(ages)].map((age) => ({
            backupId: `b${age}`,
            timeline: 1,
            startLsn: formatLsn(BigInt(10 * (50 - age)) * BigInt(WAL_SEGMENT_BYTES)),
            stopLsn: formatLsn(BigInt(10 * (50 - age) + 3) * BigInt(WAL_SEGMENT_BYTES) + 1n),
            finishedAt: new Date(NOW.getTime() - age * DAY).toISOString(),
          }));
          const files = Array.from({ length: 520 }, (_, i) => seg(1, i));
          const d = planWalRetention(files, bs, { ms: windowDays * DAY, now: NOW });
          const kept = new Set(d.keep);
          for (const b of bs)
            for (let s = 10 * (50 - Number(b.backupId.slice(1))); s <= 10 * (50 - Number(b.backupId.slice(1))) + 3; s++)
              expect(kept.has(seg(1, s))).toBe(true);
          const from = parseSegmentName(d.keepFrom!.segment)!.segment;
          for (const f of files) if (parseSegmentName(f)!.segment >= from) expect(kept.has(f)).toBe(true);
          // Every age inside the window has a backup at or before it with continuous WAL from its start.
          const anchorAge = 50 - Number(from) / 10;
          const oldest = Math.max(...bs.map((b) => Number(b.backupId.slice(1))));
          expect(anchorAge >= Math.min(windowDays, oldest)).toBe(true);
        },
      ),
    );
  });
});

// A year under the shipped defaults: daily logical backups, weekly base backups and WAL at a steady
// rate, each retention applied as the schedules do (logical after each fullBackup, base after each
// baseBackup, WAL daily in walMaintenance). Proves that what is kept is bounded, that every kept base
// backup stays restorable to its consistency point, and that every moment inside the PITR window
// has continuous WAL from a kept base backup that ended before it, checked with the PITR planner itself.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { formatBackupId } from '../../src/lib/ids.js';
import { planRecoveryPath, type ArchivedWal, type BackupSummary } from '../../src/lib/recoveryPath.js';
import { applyRetention, retentionBound } from '../../src/lib/retention.js';
import {
  formatLsn,
  parseLsn,
  segmentName,
  segmentOf,
  WAL_SEGMENT_BYTES,
  type TimelineSwitch,
} from '../../src/lib/wal.js';
import {
  parseWindow,
  planWalRetention,
  segmentNumberOf,
  windowAnchor,
  type TimelineOrigin,
} from '../../src/lib/walRetention.js';

const DAY = 86_400_000;
const SEG = BigInt(WAL_SEGMENT_BYTES);
const defaults = configSchema.parse({ clusters: {}, repositories: {} });
const WINDOW_MS = parseWindow(defaults.walRetention.window)!;
const WINDOW_DAYS = WINDOW_MS / DAY;
const LOGICAL_BOUND = retentionBound(defaults.retention)!;
const BASE_BOUND = retentionBound(defaults.retention.base, true)!;
/** Continuous WAL reaches back at most window + one week between base backups + a day; each older kept backup adds 2 segments and a label. */
const walBound = (perDay: number) => (WINDOW_DAYS + 8) * perDay + BASE_BOUND * 3;

interface Sim {
  start: number;
  perDay: number;
  verifiedEvery: number;
  baseWeekday: number;
  /** At 12:00 that day the cluster is recovered to a point PITR_BACK_DAYS earlier: timeline 2 branches off there. */
  pitrDay?: number;
}
/**
 * After a PITR 10 days back, for (14 + 8 + 10) days: the abandoned branch and the new timeline from an
 * older backup, until a backup on the new timeline past the abandoned branch's positions anchors the window.
 */
const PITR_BACK_DAYS = 10;
const PITR_DAYS = WINDOW_DAYS + 8 + PITR_BACK_DAYS;
const walBoundAfterPitr = (perDay: number) => 2 * walBound(perDay);

interface Day {
  logical: number;
  base: BackupSummary[];
  wal: Map<string, ArchivedWal>;
  now: Date;
  histories: Map<number, TimelineSwitch[]>;
  timeline: number;
}

function simulate(sim: Sim, onDay?: (day: number, state: Day) => void) {
  const segMs = DAY / sim.perDay;
  // Segment n of the current timeline completes at origin + (n - originSeg) × segMs.
  let origin = sim.start;
  let originSeg = 0n;
  let timeline = 1;
  const histories = new Map<number, TimelineSwitch[]>();
  const timelines: TimelineOrigin[] = [];
  const segAt = (t: number) => BigInt(Math.floor((t - origin) / segMs)) + originSeg + 1n;
  const wal = new Map<string, ArchivedWal>();
  let written = 0n; // segments 1..written are archived
  const archiveUntil = (t: number) => {
    while (origin + Number(written - originSeg) * segMs <= t) {
      const name = segmentName(timeline, written);
      if (written > 0n)
        wal.set(name, { name, archivedAt: new Date(origin + Number(written - originSeg) * segMs).toISOString() });
      written++;
    }
  };
  let logical: { backupId: string; time: Date; verified: boolean }[] = [];
  let base: (BackupSummary & { verified: boolean })[] = [];
  const max = { logical: 0, base: 0, wal: 0 };
  let n = 0;
  for (let day = 0; day < 365; day++) {
    const midnight = sim.start + day * DAY;
    // 02:00 fullBackup, then its retention.
    const t = new Date(midnight + 2 * 3_600_000);
    archiveUntil(t.getTime());
    logical.push({ backupId: formatBackupId(t), time: t, verified: ++n % sim.verifiedEvery !== 0 });
    const kept = new Set(applyRetention(logical, defaults.retention).keep.map((k) => k.backupId));
    logical = logical.filter((b) => kept.has(b.backupId));
    // 03:00 on the base weekday: baseBackup (start → stop spans two segments), then the base policy.
    if (new Date(midnight).getUTCDay() === sim.baseWeekday) {
      const started = midnight + 3 * 3_600_000;
      archiveUntil(started);
      const s = segAt(started);
      const label = `${segmentName(timeline, s)}.00000028.backup`;
      const finishedAt = new Date(started + segMs).toISOString();
      base.push({
        backupId: formatBackupId(new Date(started)),
        timeline,
        startLsn: formatLsn(s * SEG + 0x28n),
        stopLsn: formatLsn((s + 1n) * SEG + 0x100n),
        finishedAt,
        verified: day % 3 !== 0,
      });
      archiveUntil(started + segMs);
      wal.set(label, { name: label, archivedAt: finishedAt });
      const now = new Date(started + segMs);
      const anchor = windowAnchor(base, WINDOW_MS, now);
      // As applyBaseRetention: the anchor, and the backup the continuous WAL starts from after a PITR.
      const keepFrom = planWalRetention([...wal.keys()], base, { ms: WINDOW_MS, now, timelines }).keepFrom?.backupId;
      const candidates = base.map((b) => ({
        backupId: b.backupId,
        time: new Date(b.finishedAt),
        verified: b.verified,
        pitrWindow: b.backupId === anchor?.backupId || b.backupId === keepFrom,
      }));
      const keptBase = new Set(applyRetention(candidates, defaults.retention.base).keep.map((k) => k.backupId));
      base = base.filter((b) => keptBase.has(b.backupId));
    }
    if (day === sim.pitrDay) {
      // 12:00: recovered to the segment written 10 days ago; timeline 2 continues from there.
      const at = midnight + 12 * 3_600_000;
      archiveUntil(at);
      const switchSeg = segAt(at - PITR_BACK_DAYS * DAY);
      const history = [{ parent: 1, switchpoint: switchSeg * SEG + 0x100n }];
      histories.set(2, history);
      wal.set('00000002.history', { name: '00000002.history', archivedAt: new Date(at).toISOString() });
      timelines.push({ timeline: 2, history, archivedAt: new Date(at).toISOString() });
      [timeline, origin, originSeg, written] = [2, at, switchSeg - 1n, switchSeg];
    }
    // 20:00 walMaintenance (by then the new base backup's stop segment is archived).
    const now = new Date(midnight + 20 * 3_600_000);
    archiveUntil(now.getTime());
    for (const d of planWalRetention([...wal.keys()], base, { ms: WINDOW_MS, now, timelines }).delete)
      wal.delete(d.name);
    max.logical = Math.max(max.logical, logical.length);
    max.base = Math.max(max.base, base.length);
    max.wal = Math.max(max.wal, [...wal.keys()].filter((k) => segmentNumberOf(k) !== undefined).length);
    onDay?.(day, { logical: logical.length, base, wal, now, histories, timeline });
  }
  return max;
}

const sims = fc.record({
  start: fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2030, 0, 1) }).map((t) => t - (t % DAY)),
  perDay: fc.integer({ min: 4, max: 48 }),
  verifiedEvery: fc.integer({ min: 2, max: 30 }),
  baseWeekday: fc.integer({ min: 0, max: 6 }),
  pitrDay: fc.option(fc.integer({ min: 40, max: 330 }), { nil: undefined }),
});
const afterPitr = (sim: Sim, day: number) =>
  sim.pitrDay !== undefined && day >= sim.pitrDay && day <= sim.pitrDay + PITR_DAYS;

describe('a year of backups under the default configuration', () => {
  it(`keeps at most ${LOGICAL_BOUND} logical backups per database, ${BASE_BOUND} base backups and (${WINDOW_DAYS} + 8) × segments-per-day + ${BASE_BOUND * 3} WAL files`, () => {
    const seen = { logical: 0, base: 0, walPerDay: 0, walPerDayAfterPitr: 0 };
    fc.assert(
      fc.property(sims, (sim) => {
        const max = simulate(sim, (day, s) => {
          const segments = [...s.wal.keys()].filter((k) => segmentNumberOf(k) !== undefined).length;
          expect(s.logical).toBeLessThanOrEqual(LOGICAL_BOUND);
          expect(s.base.length).toBeLessThanOrEqual(BASE_BOUND + (afterPitr(sim, day) ? 1 : 0));
          expect(segments).toBeLessThanOrEqual(
            afterPitr(sim, day) ? walBoundAfterPitr(sim.perDay) : walBound(sim.perDay),
          );
          if (afterPitr(sim, day)) seen.walPerDayAfterPitr = Math.max(seen.walPerDayAfterPitr, segments / sim.perDay);
          else seen.walPerDay = Math.max(seen.walPerDay, segments / sim.perDay);
        });
        seen.logical = Math.max(seen.logical, max.logical);
        seen.base = Math.max(seen.base, max.base);
      }),
      { numRuns: 12, seed: 14 },
    );
    console.log(
      `most kept over 12 simulated years: ${seen.logical} logical backups, ${seen.base} base backups, ${seen.walPerDay.toFixed(1)} days of WAL (${seen.walPerDayAfterPitr.toFixed(1)} in the ${PITR_DAYS} days after a PITR ${PITR_BACK_DAYS} days back)`,
    );
  });

  it('keeps every kept base backup restorable to its consistency point, and every moment inside the PITR window recoverable', () => {
    fc.assert(
      fc.property(sims, (sim) => {
        let firstFinished: string | undefined;
        simulate(sim, (day, { base, wal, now, histories, timeline }) => {
          firstFinished ??= base[0]?.finishedAt;
          const archive = [...wal.values()];
          for (const b of base) {
            // Its start → stop WAL and label are all there: the planner reaches its stop LSN.
            const path = planRecoveryPath({
              target: { lsn: b.stopLsn },
              backups: [b],
              wal: archive,
              histories,
              now,
              liveTimeline: b.timeline,
            });
            expect(path.backup.backupId).toBe(b.backupId);
            expect(wal.has(`${segmentName(b.timeline, segmentOf(parseLsn(b.startLsn)))}.00000028.backup`)).toBe(true);
          }
          // Monthly, and every day after a PITR (the window then spans two timelines).
          if ((day % 30 !== 29 && !afterPitr(sim, day)) || !firstFinished) return;
          // Every 6 hours of the window (from the first backup's end on) plans without a gap.
          const from = Math.max(now.getTime() - WINDOW_MS, new Date(firstFinished).getTime());
          for (let t = now.getTime() - 3_600_000; t >= from; t -= 6 * 3_600_000) {
            const target = { time: new Date(t).toISOString() };
            expect(() =>
              planRecoveryPath({
                target,
                backups: base,
                wal: archive,
                histories,
                now,
                openEnded: true,
                liveTimeline: timeline,
              }),
            ).not.toThrow();
          }
        });
      }),
      {
        numRuns: 3,
        seed: 41,
        examples: [[{ start: Date.UTC(2026, 0, 1), perDay: 12, verifiedEvery: 5, baseWeekday: 0, pitrDay: 150 }]],
      },
    );
  });
});

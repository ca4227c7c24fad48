// A year under the shipped defaults: daily logical backups, weekly base backups and WAL at a steady
// rate, each retention applied as the schedules do (logical after each fullBackup, base after each
// baseBackup, WAL daily in walMaintenance). Proves that what is kept is bounded, that every kept base
// backup stays restorable to its consistency point, and that every moment inside the PITR window
// has continuous WAL from a kept base backup that ended before it, checked with the PITR planner itself.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { formatBackupId } from '../../src/lib/ids.js';
import { planRecoveryPath, type ArchivedWal, type BackupSummary } from '../../src/lib/recovery.js';
import { applyRetention, retentionBound } from '../../src/lib/retention.js';
import { formatLsn, parseLsn, segmentName, segmentOf, WAL_SEGMENT_BYTES } from '../../src/lib/wal.js';
import { parseWindow, planWalRetention, segmentNumberOf, windowAnchor } from '../../src/lib/walRetention.js';

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
}

function simulate(sim: Sim, onDay?: (day: number, state: { logical: number; base: BackupSummary[]; wal: Map<string, ArchivedWal>; now: Date }) => void) {
  const segMs = DAY / sim.perDay;
  const segAt = (t: number) => BigInt(Math.floor((t - sim.start) / segMs)) + 1n;
  const wal = new Map<string, ArchivedWal>();
  let written = 0n; // segments 1..written are archived
  const archiveUntil = (t: number) => {
    while (sim.start + Number(written) * segMs <= t) {
      if (written > 0n) wal.set(segmentName(1, written), { name: segmentName(1, written), archivedAt: new Date(sim.start + Number(written) * segMs).toISOString() });
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
      const label = `${segmentName(1, s)}.00000028.backup`;
      const finishedAt = new Date(started + segMs).toISOString();
      base.push({ backupId: formatBackupId(new Date(started)), timeline: 1, startLsn: formatLsn(s * SEG + 0x28n), stopLsn: formatLsn((s + 1n) * SEG + 0x100n), finishedAt, verified: day % 3 !== 0 });
      archiveUntil(started + segMs);
      wal.set(label, { name: label, archivedAt: finishedAt });
      const now = new Date(started + segMs);
      const anchor = windowAnchor(base, WINDOW_MS, now);
      const candidates = base.map((b) => ({ backupId: b.backupId, time: new Date(b.finishedAt), verified: b.verified, pitrWindow: b.backupId === anchor?.backupId }));
      const keptBase = new Set(applyRetention(candidates, defaults.retention.base).keep.map((k) => k.backupId));
      base = base.filter((b) => keptBase.has(b.backupId));
    }
    // 20:00 walMaintenance (by then the new base backup's stop segment is archived).
    const now = new Date(midnight + 20 * 3_600_000);
    archiveUntil(now.getTime());
    for (const d of planWalRetention([...wal.keys()], base, { ms: WINDOW_MS, now }).delete) wal.delete(d.name);
    max.logical = Math.max(max.logical, logical.length);
    max.base = Math.max(max.base, base.length);
    max.wal = Math.max(max.wal, [...wal.keys()].filter((k) => segmentNumberOf(k) !== undefined).length);
    onDay?.(day, { logical: logical.length, base, wal, now });
  }
  return max;
}

const sims = fc.record({
  start: fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2030, 0, 1) }).map((t) => t - (t % DAY)),
  perDay: fc.integer({ min: 4, max: 48 }),
  verifiedEvery: fc.integer({ min: 2, max: 30 }),
  baseWeekday: fc.integer({ min: 0, max: 6 }),
});

describe('a year of backups under the default configuration', () => {
  it(`keeps at most ${LOGICAL_BOUND} logical backups per database, ${BASE_BOUND} base backups and (${WINDOW_DAYS} + 8) × segments-per-day + ${BASE_BOUND * 3} WAL files`, () => {
    const seen = { logical: 0, base: 0, walPerDay: 0 };
    fc.assert(
      fc.property(sims, (sim) => {
        const max = simulate(sim, (_day, s) => {
          expect(s.logical).toBeLessThanOrEqual(LOGICAL_BOUND);
          expect(s.base.length).toBeLessThanOrEqual(BASE_BOUND);
          expect([...s.wal.keys()].filter((k) => segmentNumberOf(k) !== undefined).length).toBeLessThanOrEqual(walBound(sim.perDay));
        });
        seen.logical = Math.max(seen.logical, max.logical);
        seen.base = Math.max(seen.base, max.base);
        seen.walPerDay = Math.max(seen.walPerDay, max.wal / sim.perDay);
      }),
      { numRuns: 12, seed: 14 },
    );
    console.log(`most kept over 12 simulated years: ${seen.logical} logical backups, ${seen.base} base backups, ${seen.walPerDay.toFixed(1)} days of WAL`);
  });

  it('keeps every kept base backup restorable to its consistency point, and every moment inside the PITR window recoverable', () => {
    fc.assert(
      fc.property(sims, (sim) => {
        let firstFinished: string | undefined;
        simulate(sim, (day, { base, wal, now }) => {
          firstFinished ??= base[0]?.finishedAt;
          const archive = [...wal.values()];
          for (const b of base) {
            // Its start → stop WAL and label are all there: the planner reaches its stop LSN.
            const path = planRecoveryPath({ target: { lsn: b.stopLsn }, backups: [b], wal: archive, histories: new Map(), now });
            expect(path.backup.backupId).toBe(b.backupId);
            expect(wal.has(`${segmentName(1, segmentOf(parseLsn(b.startLsn)))}.00000028.backup`)).toBe(true);
          }
          if (day % 30 !== 29 || !firstFinished) return;
          // Every 6 hours of the window (from the first backup's end on) plans without a gap.
          const from = Math.max(now.getTime() - WINDOW_MS, new Date(firstFinished).getTime());
          for (let t = now.getTime() - 3_600_000; t >= from; t -= 6 * 3_600_000) {
            const target = { time: new Date(t).toISOString() };
            expect(() => planRecoveryPath({ target, backups: base, wal: archive, histories: new Map(), now, openEnded: true })).not.toThrow();
          }
        });
      }),
      { numRuns: 3, seed: 41 },
    );
  });
});

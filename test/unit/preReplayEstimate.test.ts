// What the approval of an in-place PITR says after the replay that ran before it: how much was
// replayed, from where the start after the approval replays, and the downtime to expect.
import { describe, expect, it } from 'vitest';
import type { PreReplayOutcome } from '../../src/activities/index.js';
import { expectedDowntime, preReplaySentence } from '../../src/lib/preReplayEstimate.js';
import { logSeconds, redoStartOf } from '../../src/activities/pitr/preReplay.js';

const MB = 1024 * 1024;
const pre: PreReplayOutcome = {
  standby: false,
  redoStart: '0/2000028',
  reachedLsn: '0/40000000',
  restartLsn: '0/3A000028',
  stoppedAt: 'recovery stopping before commit of transaction 812, time 2026-11-22 04:00:01+00',
  replayedBytes: 1000 * MB,
  remainingBytes: 100 * MB,
  seconds: 12,
  bytesPerSecond: 100 * MB,
  startSeconds: 0.5,
  stopSeconds: 1.5,
};

describe('the downtime an in-place PITR announces after replaying before the approval', () => {
  it('is what is left at the rate measured, the start and the promotion (the live stop is named, not counted)', () => {
    expect(expectedDowntime(pre)).toBe(3); // 100 MB at 100 MB/s + 0.5 + 1
    expect(expectedDowntime({ ...pre, remainingBytes: 0, stopSeconds: 0, startSeconds: 0 })).toBe(1);
    // Nothing left to replay needs no rate.
    expect(expectedDowntime({ ...pre, remainingBytes: 0, bytesPerSecond: 0 })).toBe(2);
  });

  it('says "unknown" when WAL is left and no rate was measured, never a huge number', () => {
    expect(expectedDowntime({ ...pre, bytesPerSecond: 0 })).toBeUndefined();
    expect(expectedDowntime({ ...pre, bytesPerSecond: Number.NaN })).toBeUndefined();
    const text = preReplaySentence({ ...pre, bytesPerSecond: 0 }, 'main');
    expect(text).toContain('(rate unknown)');
    expect(text).toContain('main will be down for an unknown time (no replay rate measured) after the approval');
    expect(text).not.toMatch(/\d{5,} s/);
  });

  it('names what was replayed, where it stopped, the restartpoint and the downtime', () => {
    const text = preReplaySentence(pre, 'main');
    expect(text).toContain('1000.0 MB of WAL from 0/2000028 to recovery stopping before commit of transaction 812');
    expect(text).toContain('main will be down about 3 s after the approval');
    expect(text).toContain('for replay (the 100.0 MB from the restartpoint at 0/3A000028), start and promotion');
    expect(text).toContain(
      'plus stopping main (its preRestore hook, its shutdown checkpoint), the swap and the checks',
    );
    const latest = preReplaySentence({ ...pre, standby: true, stoppedAt: undefined, archiveWaitSeconds: 120 }, 'main');
    expect(latest).toContain('to the end of the staged WAL (0/40000000)');
    expect(latest).toContain('plus the WAL written since it was staged');
    expect(latest).toContain(
      'plus stopping main (its preRestore hook, its shutdown checkpoint, the wait for the archive ≤ 120 s)',
    );
  });

  it("reads where a start's redo began from the server's log", () => {
    const log = '2026-12-02 02:24:10 UTC [1] LOG:  redo starts at 0/C7818E0\nLOG:  redo starts at 0/D000028';
    expect(redoStartOf(log)).toBe('0/C7818E0');
    expect(redoStartOf('LOG:  database system is ready')).toBeUndefined();
  });

  it("times the replay, its start and its shutdown by the log's own timestamps", () => {
    const log = [
      '2026-12-02 02:46:38.100 UTC [7] LOG:  starting PostgreSQL 15.8 on x86_64-pc-linux-gnu',
      '2026-12-02 02:46:38.350 UTC [9] LOG:  redo starts at 0/2000028',
      '2026-12-02 02:46:41.089 UTC [9] LOG:  recovery stopping before commit of transaction 729, time 2026-12-02 02:46:41.08+00',
      '2026-12-02 02:46:41.402 UTC [7] LOG:  database system is shut down',
    ].join('\n');
    expect(logSeconds(log, /starting PostgreSQL/, /redo starts at/)).toBeCloseTo(0.25);
    expect(logSeconds(log, /redo starts at/, /recovery stopping/)).toBeCloseTo(2.739);
    expect(logSeconds(log, /recovery stopping/, /database system is shut down/)).toBeCloseTo(0.313);
    // Lines without pgwarden's prefix (or missing) say nothing.
    expect(logSeconds('LOG:  redo starts at 0/2000028\nLOG:  recovery stopping', /redo/, /stopping/)).toBeUndefined();
  });
});

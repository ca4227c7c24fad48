import { describe, expect, it } from 'vitest';
import {
  failureLine,
  labelsFromId,
  lookFrom,
  procedureOf,
  recordRuns,
  runAlerts,
  runResolvedLine,
  scheduleAlerts,
  variantOf,
  type ClosedRun,
  type RunWatchState,
} from '../../src/lib/runAlerts.js';

const now = new Date('2026-11-22T12:00:00.000Z');
const empty: RunWatchState = { lookedAt: null, procedures: {} };
/** A look was made before (not the first look's catch-up). */
const looked: RunWatchState = { lookedAt: new Date(now.getTime() - 15 * 60_000).toISOString(), procedures: {} };
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000).toISOString();
const run = (
  o: Partial<ClosedRun> & { runId: string; status: string; closed: number; error?: string },
): ClosedRun & { error?: string } => ({
  workflowId: `pgwarden/main/app/full/${o.runId}`,
  type: 'fullBackup',
  startedAt: minutesAgo(o.closed + 1),
  closedAt: minutesAgo(o.closed),
  cluster: 'main',
  database: 'app',
  ...o,
});

describe('recordRuns and runAlerts', () => {
  it('a failed run fires once per procedure, naming the run and its error line; the next success clears it', () => {
    const failed = recordRuns(
      empty,
      'main',
      [run({ runId: 'r1', status: 'FAILED', closed: 30, error: 'database "app" does not exist' })],
      now,
    );
    expect(runAlerts(failed)).toEqual([
      {
        key: 'run-failed:full:app',
        message: `full of main/app failed: pgwarden/main/app/full/r1 at ${minutesAgo(30)}: database "app" does not exist`,
      },
    ]);
    expect(failed.procedures['full:app']!.failures).toBe(1);
    // The same run seen again (overlapping looks, a retried check): nothing changes.
    const again = recordRuns(failed, 'main', [run({ runId: 'r1', status: 'FAILED', closed: 30, error: 'other' })], now);
    expect(again.procedures).toEqual(failed.procedures);
    // The failure was notified (its key is among those the last notification sent): the success clears it.
    const ok = recordRuns(again, 'main', [run({ runId: 'r2', status: 'COMPLETED', closed: 5 })], now, [
      'run-failed:full:app',
    ]);
    expect(runAlerts(ok)).toEqual([]);
    expect(ok.procedures['full:app']).toMatchObject({ ok: true, failures: 1, workflowId: 'pgwarden/main/app/full/r2' });
    expect(runResolvedLine(ok, 'run-failed:full:app')).toBe(
      `full of main/app succeeded again: pgwarden/main/app/full/r2 at ${minutesAgo(5)}`,
    );
    expect(runResolvedLine(ok, 'backup-stale:app')).toBeUndefined();
    // An older failure listed late does not undo the newer success.
    expect(runAlerts(recordRuns(ok, 'main', [run({ runId: 'r0', status: 'FAILED', closed: 60 })], now))).toEqual([]);
  });

  it('offsite-wal, offsite check and retention plan are procedures of their own: the daily sync failing at 05:55 is heard though offsite-wal succeeded at 06:01, in either look order', () => {
    const offsite = { type: 'offsiteSync', database: undefined };
    const daily = run({
      ...offsite,
      runId: 'a',
      workflowId: 'pgwarden/main/offsite-daily-2026-11-22T05:00:00Z',
      status: 'FAILED',
      closed: 10,
      error: 'corrupt main/base/x/base.tar.zst',
    });
    const wal = run({
      ...offsite,
      runId: 'b',
      workflowId: 'pgwarden/main/offsite-wal-2026-11-22T06:00:00Z',
      status: 'COMPLETED',
      closed: 4,
      variant: 'wal',
    });
    const oneLook = recordRuns(empty, 'main', [daily, wal], now);
    expect(runAlerts(oneLook).map((a) => a.key)).toEqual(['run-failed:offsite']);
    expect(runAlerts(oneLook)[0]!.message).toContain('corrupt main/base/x/base.tar.zst');
    // Seen first and notified, the WAL shipping's success is no all-clear for it.
    const later = recordRuns(recordRuns(empty, 'main', [daily], now), 'main', [wal], now, ['run-failed:offsite']);
    expect(runAlerts(later).map((a) => a.key)).toEqual(['run-failed:offsite']);
    // Told by the id alone when the input could not be read; a check-only run is apart too.
    expect(procedureOf({ ...wal, variant: undefined })).toBe('offsite-wal');
    expect(procedureOf({ ...daily, variant: 'check' })).toBe('offsite-check');
    // A retention plan's success does not clear a failed retention --apply.
    const apply = run({ type: 'retention', database: undefined, runId: 'p', status: 'FAILED', closed: 9 });
    const plan = run({
      type: 'retention',
      database: undefined,
      runId: 'q',
      status: 'COMPLETED',
      closed: 2,
      variant: 'plan',
    });
    expect(runAlerts(recordRuns(empty, 'main', [apply, plan], now)).map((a) => a.key)).toEqual([
      'run-failed:retention',
    ]);
    expect(variantOf('offsiteSync', { cluster: 'main', walOnly: true })).toBe('wal');
    expect(variantOf('offsiteSync', { cluster: 'main', checkOnly: true })).toBe('check');
    expect(variantOf('offsiteSync', { cluster: 'main' })).toBeUndefined();
    expect(variantOf('retention', { cluster: 'main' })).toBe('plan');
    expect(variantOf('retention', { cluster: 'main', apply: true })).toBeUndefined();
    expect(variantOf('pointInTimeRecovery', { cluster: 'main', mode: 'rehearsal' })).toBe('rehearsal');
  });

  it('a failure no notification named yet is alerted once even when a success closed after it (one look, or channels down), then the all-clear follows', () => {
    const failed = run({ runId: 'f', status: 'FAILED', closed: 12, error: 'disk full' });
    const ok = run({ runId: 's', status: 'COMPLETED', closed: 3 });
    const look = recordRuns(looked, 'main', [failed, ok], now);
    expect(runAlerts(look)).toEqual([
      {
        key: 'run-failed:full:app#f',
        message: `full of main/app failed: pgwarden/main/app/full/f at ${minutesAgo(12)}: disk full (pgwarden/main/app/full/s succeeded since)`,
      },
    ]);
    expect(look.procedures['full:app']).toMatchObject({ ok: true, failures: 1 });
    // Not yet sent (channels down): the next look still alerts it; once sent, it clears and the line says what succeeded.
    const notSent = recordRuns(look, 'main', [], now, []);
    expect(runAlerts(notSent).map((a) => a.key)).toEqual(['run-failed:full:app#f']);
    const sent = recordRuns(notSent, 'main', [], now, ['run-failed:full:app#f']);
    expect(runAlerts(sent)).toEqual([]);
    expect(runResolvedLine(sent, 'run-failed:full:app#f')).toBe(
      `full of main/app succeeded again: pgwarden/main/app/full/s at ${minutesAgo(3)}`,
    );
    // A failure recorded by one look but never sent (channels down), then a success: still alerted once.
    const unsent = recordRuns(recordRuns(looked, 'main', [failed], now), 'main', [ok], now, []);
    expect(runAlerts(unsent).map((a) => a.key)).toEqual(['run-failed:full:app#f']);
    // The first look catches up on the last day: a failure already followed by a success is history.
    expect(runAlerts(recordRuns(empty, 'main', [failed, ok], now))).toEqual([]);
  });

  it('a failure is never "resolved" without a success: forgotten after 35 days or lost with the record, it is "no longer tracked"', () => {
    const failed = recordRuns(
      empty,
      'main',
      [run({ runId: 'r', status: 'FAILED', closed: 30 * 1440, error: 'boom' })],
      now,
    );
    const later = new Date(now.getTime() + 6 * 86_400_000);
    const forgotten = recordRuns(failed, 'main', [], later, ['run-failed:full:app']);
    expect(forgotten.procedures).toEqual({});
    const line = runResolvedLine(
      forgotten,
      'run-failed:full:app',
      'full of main/app failed: pgwarden/main/app/full/r at …: boom',
    );
    expect(line).toMatch(
      /^No longer tracked, not resolved \(no run of it for 35 days, or healthCheck's record of runs was lost\): full of main\/app failed: .*boom$/,
    );
    expect(line).not.toMatch(/succeeded|Resolved/);
    // An unheard failure is not forgotten before it is heard.
    const unheard = recordRuns(
      looked,
      'main',
      [
        run({ runId: 'f', status: 'FAILED', closed: 40 * 1440 }),
        run({ runId: 's', status: 'COMPLETED', closed: 39 * 1440 }),
      ],
      now,
    );
    expect(runAlerts(unheard).map((a) => a.key)).toEqual(['run-failed:full:app#f']);
  });

  it('a "*" backup failing in one database alerts once, for that database, not again for the "*" run', () => {
    const parent = run({
      runId: 'P',
      workflowId: 'pgwarden/main/all/full-daily-2026-11-22T02:00:00Z',
      database: '*',
      status: 'FAILED',
      closed: 5,
      error: 'database "shop": pg_dump: error: connection lost',
    });
    const child = run({
      runId: 'C',
      workflowId: 'pgwarden/main/shop/full/20261122T020000Z',
      database: 'shop',
      status: 'FAILED',
      closed: 6,
      error: 'pg_dump: error: connection lost',
      parentRunId: 'P',
    });
    const okChild = run({
      runId: 'D',
      workflowId: 'pgwarden/main/app/full/20261122T020000Z',
      database: 'app',
      status: 'COMPLETED',
      closed: 7,
      parentRunId: 'P',
    });
    const state = recordRuns(empty, 'main', [parent, child, okChild], now);
    expect(runAlerts(state)).toEqual([
      {
        key: 'run-failed:full:shop',
        message: `full of main/shop failed: pgwarden/main/shop/full/20261122T020000Z at ${minutesAgo(6)}: pg_dump: error: connection lost`,
      },
    ]);
    // The "*" run failing before any database (listing them failed) alerts as itself.
    expect(runAlerts(recordRuns(empty, 'main', [{ ...parent, runId: 'Q' }], now)).map((a) => a.key)).toEqual([
      'run-failed:full:*',
    ]);
  });

  it('terminated and timed-out runs are failures; cancelled runs, other clusters and foreign workflows are not', () => {
    const state = recordRuns(
      empty,
      'main',
      [
        run({ runId: 't', status: 'TERMINATED', closed: 3, type: 'verifyBackup', error: 'stuck' }),
        run({ runId: 'o', status: 'TIMED_OUT', closed: 3, type: 'offsiteSync', database: undefined }),
        run({ runId: 'c', status: 'CANCELLED', closed: 3, type: 'baseBackup', database: undefined }),
        run({ runId: 'x', status: 'FAILED', closed: 3, cluster: 'other' }),
        run({ runId: 'y', status: 'FAILED', closed: 3, type: 'somethingElse' }),
      ],
      now,
    );
    expect(runAlerts(state).map((a) => a.message.split(':')[0])).toEqual([
      'offsite of main timed out',
      'verify of main/app was terminated',
    ]);
  });

  it('a PITR rehearsal is its own procedure: a live recovery does not clear a failed drill', () => {
    const drill = run({
      runId: 'd',
      status: 'FAILED',
      closed: 9,
      type: 'pointInTimeRecovery',
      workflowId: 'pgwarden/main/pitr-rehearsal-weekly-2026-11-22T06:00:00Z',
      database: undefined,
    });
    expect(procedureOf(drill)).toBe('pitr-rehearsal');
    const live = run({
      runId: 'l',
      status: 'COMPLETED',
      closed: 2,
      type: 'pointInTimeRecovery',
      workflowId: 'pgwarden/main/pitr/20261122T100000Z',
      database: undefined,
    });
    expect(runAlerts(recordRuns(empty, 'main', [drill, live], now)).map((a) => a.key)).toEqual([
      'run-failed:pitr-rehearsal',
    ]);
  });

  it('looks back a day at first, then from the last look with an overlap; forgets procedures idle for 35 days', () => {
    expect(lookFrom(empty, now).toISOString()).toBe('2026-11-21T12:00:00.000Z');
    expect(lookFrom({ lookedAt: minutesAgo(15), procedures: {} }, now).toISOString()).toBe(minutesAgo(25));
    const old = recordRuns(empty, 'main', [run({ runId: 'r', status: 'COMPLETED', closed: 36 * 1440 })], now);
    expect(old.procedures).toEqual({});
  });

  it('labels from run ids: per-database kinds name the database, "all" is every database', () => {
    expect(labelsFromId('pgwarden/main/app/full-daily-2026-11-22T02:00:00Z', 'full')).toEqual({
      cluster: 'main',
      database: 'app',
    });
    expect(labelsFromId('pgwarden/main/all/full-daily-2026-11-22T02:00:00Z', 'full')).toEqual({
      cluster: 'main',
      database: '*',
    });
    expect(labelsFromId('pgwarden/main/base-weekly-2026-11-22T03:00:00Z', 'base')).toEqual({ cluster: 'main' });
    expect(labelsFromId('backup-42', 'full')).toEqual({});
  });

  it('the failure line is the innermost cause, first line, bounded', () => {
    const inner = new Error('database "nosuch" does not exist\nDETAIL: more');
    const outer = Object.assign(new Error('Workflow execution failed'), {
      cause: Object.assign(new Error('Activity task failed'), { cause: inner }),
    });
    expect(failureLine(outer)).toBe('database "nosuch" does not exist');
    expect(failureLine(new Error('x'.repeat(400))).length).toBe(300);
  });
});

describe('scheduleAlerts', () => {
  it('a paused schedule fires with its note; a missing one only where others exist', () => {
    expect(scheduleAlerts('main', [{ id: 'pgwarden/main/base-weekly', exists: false }], now)).toEqual([]);
    const alerts = scheduleAlerts(
      'main',
      [
        { id: 'pgwarden/main/base-weekly', exists: true, paused: true, note: 'INC-42' },
        { id: 'pgwarden/main/health', exists: true, paused: false },
        { id: 'pgwarden/main/wal-maintenance', exists: false },
      ],
      now,
    );
    expect(alerts.map((a) => a.key)).toEqual([
      'schedule-paused:pgwarden/main/base-weekly',
      'schedule-missing:pgwarden/main/wal-maintenance',
    ]);
    expect(alerts[0]!.message).toBe(
      'schedule pgwarden/main/base-weekly is paused (INC-42): its runs do not start (pgwarden schedules unpause pgwarden/main/base-weekly)',
    );
  });

  it('a schedule that has not started a run for a period and a tenth (at least 30 minutes) is overdue, naming the run still running', () => {
    const day = 86_400_000;
    const daily = {
      id: 'pgwarden/main/app/full-daily',
      exists: true,
      paused: false,
      periodMs: day,
      createdAt: minutesAgo(60 * 24 * 30),
    };
    expect(scheduleAlerts('main', [{ ...daily, lastActionAt: minutesAgo(60 * 26) }], now)).toEqual([]);
    const late = scheduleAlerts(
      'main',
      [{ ...daily, lastActionAt: minutesAgo(60 * 27), running: 'pgwarden/main/app/full-daily-2026-11-21T02:00:00Z' }],
      now,
    );
    expect(late).toEqual([
      {
        key: 'schedule-overdue:pgwarden/main/app/full-daily',
        message: `schedule pgwarden/main/app/full-daily has not started a run since ${minutesAgo(60 * 27)} (it runs every 24 hours): its run pgwarden/main/app/full-daily-2026-11-21T02:00:00Z is still running, so the next ones are skipped`,
      },
    ]);
    // Every 15 minutes: overdue after 45 minutes; a new schedule counts from its creation.
    const health = { id: 'pgwarden/main/health', exists: true, paused: false, periodMs: 15 * 60_000 };
    expect(scheduleAlerts('main', [{ ...health, createdAt: minutesAgo(44) }], now)).toEqual([]);
    expect(scheduleAlerts('main', [{ ...health, createdAt: minutesAgo(46) }], now).map((a) => a.key)).toEqual([
      'schedule-overdue:pgwarden/main/health',
    ]);
    // Paused says paused, not overdue.
    expect(
      scheduleAlerts('main', [{ ...health, paused: true, createdAt: minutesAgo(460) }], now).map((a) => a.key),
    ).toEqual(['schedule-paused:pgwarden/main/health']);
  });
});

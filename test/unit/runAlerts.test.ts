import { describe, expect, it } from 'vitest';
import { failureLine, labelsFromId, lookFrom, procedureOf, recordRuns, runAlerts, runResolvedLine, scheduleAlerts, type ClosedRun, type RunWatchState } from '../../src/lib/runAlerts.js';

const now = new Date('2026-11-22T12:00:00.000Z');
const empty: RunWatchState = { lookedAt: null, procedures: {} };
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000).toISOString();
const run = (o: Partial<ClosedRun> & { runId: string; status: string; closed: number; error?: string }): ClosedRun & { error?: string } => ({
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
    const failed = recordRuns(empty, 'main', [run({ runId: 'r1', status: 'FAILED', closed: 30, error: 'database "app" does not exist' })], now);
    expect(runAlerts(failed)).toEqual([
      { key: 'run-failed:full:app', message: `full of main/app failed: pgwarden/main/app/full/r1 at ${minutesAgo(30)}: database "app" does not exist` },
    ]);
    expect(failed.procedures['full:app']!.failures).toBe(1);
    // The same run seen again (overlapping looks, a retried check): nothing changes.
    const again = recordRuns(failed, 'main', [run({ runId: 'r1', status: 'FAILED', closed: 30, error: 'other' })], now);
    expect(again.procedures).toEqual(failed.procedures);
    const ok = recordRuns(again, 'main', [run({ runId: 'r2', status: 'COMPLETED', closed: 5 })], now);
    expect(runAlerts(ok)).toEqual([]);
    expect(ok.procedures['full:app']).toMatchObject({ ok: true, failures: 1, workflowId: 'pgwarden/main/app/full/r2' });
    expect(runResolvedLine(ok, 'run-failed:full:app')).toBe(`full of main/app succeeded again: pgwarden/main/app/full/r2 at ${minutesAgo(5)}`);
    expect(runResolvedLine(ok, 'backup-stale:app')).toBeUndefined();
    // An older failure listed late does not undo the newer success.
    expect(runAlerts(recordRuns(ok, 'main', [run({ runId: 'r0', status: 'FAILED', closed: 60 })], now))).toEqual([]);
  });

  it('terminated and timed-out runs are failures; cancelled runs, other clusters and foreign workflows are not', () => {
    const state = recordRuns(empty, 'main', [
      run({ runId: 't', status: 'TERMINATED', closed: 3, type: 'verifyBackup', error: 'stuck' }),
      run({ runId: 'o', status: 'TIMED_OUT', closed: 3, type: 'offsiteSync', database: undefined }),
      run({ runId: 'c', status: 'CANCELLED', closed: 3, type: 'baseBackup', database: undefined }),
      run({ runId: 'x', status: 'FAILED', closed: 3, cluster: 'other' }),
      run({ runId: 'y', status: 'FAILED', closed: 3, type: 'somethingElse' }),
    ], now);
    expect(runAlerts(state).map((a) => a.message.split(':')[0])).toEqual(['offsite of main timed out', 'verify of main/app was terminated']);
  });

  it('a PITR rehearsal is its own procedure: a live recovery does not clear a failed drill', () => {
    const drill = run({ runId: 'd', status: 'FAILED', closed: 9, type: 'pointInTimeRecovery', workflowId: 'pgwarden/main/pitr-rehearsal-weekly-2026-11-22T06:00:00Z', database: undefined });
    expect(procedureOf(drill)).toBe('pitr-rehearsal');
    const live = run({ runId: 'l', status: 'COMPLETED', closed: 2, type: 'pointInTimeRecovery', workflowId: 'pgwarden/main/pitr/20261122T100000Z', database: undefined });
    expect(runAlerts(recordRuns(empty, 'main', [drill, live], now)).map((a) => a.key)).toEqual(['run-failed:pitr-rehearsal']);
  });

  it('looks back a day at first, then from the last look with an overlap; forgets procedures idle for 35 days', () => {
    expect(lookFrom(empty, now).toISOString()).toBe('2026-11-21T12:00:00.000Z');
    expect(lookFrom({ lookedAt: minutesAgo(15), procedures: {} }, now).toISOString()).toBe(minutesAgo(25));
    const old = recordRuns(empty, 'main', [run({ runId: 'r', status: 'FAILED', closed: 36 * 1440 })], now);
    expect(old.procedures).toEqual({});
  });

  it('labels from run ids: per-database kinds name the database, "all" is every database', () => {
    expect(labelsFromId('pgwarden/main/app/full-daily-2026-11-22T02:00:00Z', 'full')).toEqual({ cluster: 'main', database: 'app' });
    expect(labelsFromId('pgwarden/main/all/full-daily-2026-11-22T02:00:00Z', 'full')).toEqual({ cluster: 'main', database: '*' });
    expect(labelsFromId('pgwarden/main/base-weekly-2026-11-22T03:00:00Z', 'base')).toEqual({ cluster: 'main' });
    expect(labelsFromId('backup-42', 'full')).toEqual({});
  });

  it('the failure line is the innermost cause, first line, bounded', () => {
    const inner = new Error('database "nosuch" does not exist\nDETAIL: more');
    const outer = Object.assign(new Error('Workflow execution failed'), { cause: Object.assign(new Error('Activity task failed'), { cause: inner }) });
    expect(failureLine(outer)).toBe('database "nosuch" does not exist');
    expect(failureLine(new Error('x'.repeat(400))).length).toBe(300);
  });
});

describe('scheduleAlerts', () => {
  it('a paused schedule fires with its note; a missing one only where others exist', () => {
    expect(scheduleAlerts('main', [{ id: 'pgwarden/main/base-weekly', exists: false }], now)).toEqual([]);
    const alerts = scheduleAlerts('main', [
      { id: 'pgwarden/main/base-weekly', exists: true, paused: true, note: 'INC-42' },
      { id: 'pgwarden/main/health', exists: true, paused: false },
      { id: 'pgwarden/main/wal-maintenance', exists: false },
    ], now);
    expect(alerts.map((a) => a.key)).toEqual(['schedule-paused:pgwarden/main/base-weekly', 'schedule-missing:pgwarden/main/wal-maintenance']);
    expect(alerts[0]!.message).toBe('schedule pgwarden/main/base-weekly is paused (INC-42): its runs do not start (pgwarden schedules unpause pgwarden/main/base-weekly)');
  });

  it('a schedule that has not started a run for a period and a tenth (at least 30 minutes) is overdue, naming the run still running', () => {
    const day = 86_400_000;
    const daily = { id: 'pgwarden/main/app/full-daily', exists: true, paused: false, periodMs: day, createdAt: minutesAgo(60 * 24 * 30) };
    expect(scheduleAlerts('main', [{ ...daily, lastActionAt: minutesAgo(60 * 26) }], now)).toEqual([]);
    const late = scheduleAlerts('main', [{ ...daily, lastActionAt: minutesAgo(60 * 27), running: 'pgwarden/main/app/full-daily-2026-11-21T02:00:00Z' }], now);
    expect(late).toEqual([{
      key: 'schedule-overdue:pgwarden/main/app/full-daily',
      message: `schedule pgwarden/main/app/full-daily has not started a run since ${minutesAgo(60 * 27)} (it runs every 24 hours): its run pgwarden/main/app/full-daily-2026-11-21T02:00:00Z is still running, so the next ones are skipped`,
    }]);
    // Every 15 minutes: overdue after 45 minutes; a new schedule counts from its creation.
    const health = { id: 'pgwarden/main/health', exists: true, paused: false, periodMs: 15 * 60_000 };
    expect(scheduleAlerts('main', [{ ...health, createdAt: minutesAgo(44) }], now)).toEqual([]);
    expect(scheduleAlerts('main', [{ ...health, createdAt: minutesAgo(46) }], now).map((a) => a.key)).toEqual(['schedule-overdue:pgwarden/main/health']);
    // Paused says paused, not overdue.
    expect(scheduleAlerts('main', [{ ...health, paused: true, createdAt: minutesAgo(460) }], now).map((a) => a.key)).toEqual(['schedule-paused:pgwarden/main/health']);
  });
});

import { describe, expect, it } from 'vitest';
import { formatFromNow, formatZonedTime, scheduleLines } from '../../src/cli/format.js';
import type { ScheduleRow } from '../../src/cli/scheduleOps.js';

describe('schedule times for people', () => {
  const at = new Date('2026-11-22T02:00:00Z');

  it('names the zone, in the zone asked for', () => {
    expect(formatZonedTime(at, 'UTC')).toBe('Sun 2026-11-22 02:00 UTC');
    expect(formatZonedTime(at, 'America/New_York')).toBe('Sat 2026-11-21 21:00 EST');
    expect(formatZonedTime(new Date('2026-07-01T12:00:00Z'), 'America/New_York')).toBe('Wed 2026-07-01 08:00 EDT');
    expect(formatZonedTime(at, 'Europe/Berlin')).toBe('Sun 2026-11-22 03:00 GMT+1');
  });

  it('says how far away', () => {
    expect(formatFromNow(at, at.getTime() - 5 * 3600_000 - 12 * 60_000)).toBe('in 5h12m');
    expect(formatFromNow(at, at.getTime() + 125_000)).toBe('2m05s ago');
  });

  it('lists the next runs and the last in local time; a paused schedule has no next run', () => {
    const row: ScheduleRow = {
      id: 'pgwarden/main/all/full-daily',
      workflowType: 'fullBackup',
      timing: '0 2 * * * (UTC)',
      paused: false,
      nextRuns: ['2026-11-22T02:00:00.000Z', '2026-11-23T02:00:00.000Z'],
      lastRun: { workflowId: 'x', scheduledAt: '2026-11-21T02:00:00.000Z', status: 'COMPLETED' },
    };
    const now = at.getTime() - 3600_000;
    expect(scheduleLines([row], now, 'America/New_York')).toEqual([
      'pgwarden/main/all/full-daily  fullBackup  0 2 * * * (UTC)',
      '    next Sat 2026-11-21 21:00 EST (in 1h00m), Sun 2026-11-22 21:00 EST; last Fri 2026-11-20 21:00 EST completed',
    ]);
    const paused = scheduleLines([{ ...row, paused: true, note: 'INC-42', lastRun: undefined }], now, 'UTC');
    expect(paused).toEqual([
      'pgwarden/main/all/full-daily  fullBackup  0 2 * * * (UTC)  PAUSED (INC-42)',
      '    next - (paused); not run yet',
    ]);
  });
});

describe('the schedule commands of the README and docs/', () => {
  it("name schedules that `schedules apply` creates from the README's own config", async () => {
    const { readDocs } = await import('../helpers/docs.js');
    const { parseConfig } = await import('../../src/config/index.js');
    const { desiredSchedules } = await import('../../src/lib/schedules.js');
    const docs = (await readDocs()).map((d) => d.text).join('\n');
    const configBlock = /### Configuration[\s\S]*?```json\n([\s\S]*?)```/.exec(docs)![1]!;
    const ids = new Set(desiredSchedules(parseConfig(JSON.parse(configBlock))).map((s) => s.id));
    const named = [...docs.matchAll(/^pgwarden schedules (?:trigger|pause|unpause|delete) (pgwarden\/\S+)/gm)].map(
      (m) => m[1]!,
    );
    expect(named.length).toBeGreaterThanOrEqual(4);
    for (const id of named) expect(ids, id).toContain(id);
  });
});

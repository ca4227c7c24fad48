import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { clipText, humanTiming, runDetails, runSummary, SUMMARY_MAX_BYTES } from '../../src/lib/runSummary.js';
import { desiredSchedules } from '../../src/lib/schedules.js';

describe('runSummary', () => {
  it('names the cluster, database, kind and target of each procedure in one line', () => {
    expect(runSummary('pitr', { cluster: 'main', target: { time: '2026-11-22 14:31:00+00' } })).toBe(
      'PITR of main to 2026-11-22 14:31:00+00, in place (waits for approval)',
    );
    expect(runSummary('pitr', { cluster: 'main', target: { latest: true }, mode: 'rehearsal' })).toBe(
      'PITR of main to latest, rehearsal on a scratch copy',
    );
    expect(runSummary('pitr', { cluster: 'main', target: { lsn: '0/3000060' } })).toBe(
      'PITR of main to LSN 0/3000060, in place (waits for approval)',
    );
    expect(runSummary('full', { cluster: 'main', database: 'app' })).toBe('Logical backup of main/app');
    expect(runSummary('full', { cluster: 'main', database: '*', verify: true })).toBe(
      'Logical backup of every database of main, then verify-by-restore',
    );
    expect(runSummary('verify', { cluster: 'main', database: '*' })).toBe('Verify newest backup of main/*');
    expect(runSummary('verify', { cluster: 'main', database: 'app', backupId: '20261122T020000Z' })).toBe(
      'Verify backup 20261122T020000Z of main/app',
    );
    expect(runSummary('restore', { cluster: 'main', database: 'app' })).toBe(
      'Restore of main/app from the newest backup, in place (waits for approval)',
    );
    expect(
      runSummary('restore', { cluster: 'main', database: 'app', backupId: '20261122T020000Z', tables: ['items'] }),
    ).toBe('Restore tables items of main/app from backup 20261122T020000Z into a copy');
    expect(runSummary('offsite', { cluster: 'main', walOnly: true })).toBe('Offsite WAL shipping of main');
    expect(runSummary('offsite', { cluster: 'main', checkOnly: true, repositories: ['s3'] })).toBe(
      'Offsite check of main to s3',
    );
    expect(runSummary('base', { cluster: 'main' })).toBe('Physical base backup of main');
    expect(runSummary('wal-maintenance', { cluster: 'main', dryRun: true })).toBe('WAL maintenance of main (dry run)');
    expect(runSummary('health', { cluster: 'main' })).toBe('Health check of main');
    expect(runSummary('retention', { cluster: 'main', database: 'app' })).toBe('Retention of main/app (plan only)');
    expect(runSummary('retention', { cluster: 'main', apply: true })).toBe(
      'Retention of main, deleting what the policy lets go',
    );
  });

  it('never breaks on a bad input (the run itself refuses it)', () => {
    expect(runSummary('pitr', { cluster: 'main' })).toBe(
      'PITR of main to an unnamed target, in place (waits for approval)',
    );
    expect(runSummary('full', {})).toBe('Logical backup of undefined');
  });
});

describe('runDetails', () => {
  it('lists the input in readable form and says where the run came from', () => {
    const details = runDetails(
      'pitr',
      { cluster: 'main', target: { time: '2026-11-22 14:31:00+00' }, mode: undefined },
      { startedBy: 'the pgwarden CLI' },
    );
    expect(details.split('\n')).toEqual([
      '**PITR of main to 2026-11-22 14:31:00+00, in place (waits for approval)**',
      '',
      'Target: time 2026-11-22 14:31:00+00',
      '',
      'Input:',
      '- cluster: `main`',
      '- target: `{"time":"2026-11-22 14:31:00+00"}`',
      '',
      'Started by the pgwarden CLI',
    ]);
    expect(
      runDetails(
        'full',
        { cluster: 'main', database: 'app' },
        { startedBy: 'schedule x (every day at 02:00 UTC)', note: 'logical backup' },
      ),
    ).toContain('Started by schedule x (every day at 02:00 UTC): logical backup');
  });
});

describe('humanTiming', () => {
  it('says the shipped schedules in words', () => {
    expect(humanTiming({ cron: '0 2 * * *' }, 'UTC')).toBe('every day at 02:00 UTC');
    expect(humanTiming({ cron: '30 3 * * 0' }, 'Europe/Berlin')).toBe('every Sunday at 03:30 Europe/Berlin');
    expect(humanTiming({ cron: '0 3 * * 7' }, 'UTC')).toBe('every Sunday at 03:00 UTC');
    expect(humanTiming({ cron: '15 1 1 * *' }, 'UTC')).toBe('on day 1 of every month at 01:15 UTC');
    expect(humanTiming({ cron: '*/10 * * * *' }, 'UTC')).toBe('every 10 minutes');
    expect(humanTiming({ cron: '5 * * * *' }, 'UTC')).toBe('every hour at :05');
    expect(humanTiming({ every: '6 hours' }, 'UTC')).toBe('every 6 hours');
  });

  it('shows what it cannot say plainly as the crontab line', () => {
    expect(humanTiming({ cron: '0 2 * * 1-5' }, 'UTC')).toBe('cron "0 2 * * 1-5" (UTC)');
    expect(humanTiming({ cron: '0 2 1 6 *' }, 'UTC')).toBe('cron "0 2 1 6 *" (UTC)');
  });

  it('has words for every default job', () => {
    const config = parseConfig({
      clusters: { main: {} },
      repositories: { local: { type: 'local', path: '/x' }, s3: { type: 's3', bucket: 'offsite' } },
    });
    for (const s of desiredSchedules(config))
      expect(humanTiming(s.timing, config.schedules.timeZone)).toMatch(/^every /);
  });
});

describe('clipText', () => {
  it('keeps a summary of a restore of many tables under what Temporal accepts (400 bytes), on a character boundary', () => {
    const tables = Array.from({ length: 40 }, (_, i) => `public.order_items_2026_${String(i).padStart(2, '0')}`);
    const summary = runSummary('restore', { cluster: 'main', database: 'app', tables });
    expect(new TextEncoder().encode(summary).length).toBeLessThanOrEqual(SUMMARY_MAX_BYTES);
    expect(summary).toMatch(/^Restore tables public\.order_items_2026_00, .* …$/);
    const wide = clipText('ü'.repeat(400), 11);
    expect(wide).toBe('üüü …');
    expect(clipText('short')).toBe('short');
    const details = runDetails('restore', {
      cluster: 'main',
      database: 'app',
      tables: Array.from({ length: 2000 }, (_, i) => `public.t${i}`),
    });
    expect(new TextEncoder().encode(details).length).toBeLessThanOrEqual(16_000);
  });
});

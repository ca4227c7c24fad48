import { describe, expect, it } from 'vitest';
import {
  evaluateHealth,
  notificationDue,
  offsiteWaitingStatus,
  resolvedKeys,
  type HealthSnapshot,
  type HealthThresholds,
} from '../../src/lib/health.js';

const T: HealthThresholds = {
  maxBackupAgeHours: 24,
  maxBaseBackupAgeDays: 8,
  maxVerifiedRestoreAgeDays: 7,
  maxRepositoryUsedPercent: 85,
};
const at = '2026-11-22T12:00:00.000Z';
const hoursAgo = (h: number) => new Date(Date.parse(at) - h * 3_600_000).toISOString();

function healthy(): HealthSnapshot {
  return {
    cluster: 'main',
    at,
    backups: [
      {
        kind: 'logical',
        database: 'app',
        lastAt: hoursAgo(10),
        lastBytes: 100,
        firstAt: hoursAgo(500),
        lastVerifiedAt: hoursAgo(8),
      },
      { kind: 'base', lastAt: hoursAgo(100), lastBytes: 1000, firstAt: hoursAgo(100), lastVerifiedAt: null },
    ],
    archiver: { secondsSinceLastArchived: 30, segmentsWaiting: 0, failedCount: 0, alerts: [] },
    repository: { name: 'local', totalBytes: 1000, freeBytes: 500 },
    offsite: [{ repository: 's3', missing: 3, missingPastGrace: 0 }],
  };
}

describe('evaluateHealth', () => {
  it('finds nothing wrong with a healthy cluster (objects inside the grace period are not drift)', () => {
    expect(evaluateHealth(healthy(), T)).toEqual([]);
  });

  it('raises one alert per crossed threshold, each keyed by what fires', () => {
    const s = healthy();
    s.backups[0] = { ...s.backups[0]!, lastAt: hoursAgo(25), lastVerifiedAt: hoursAgo(24 * 8) };
    s.backups[1] = { ...s.backups[1]!, lastAt: hoursAgo(24 * 9) };
    s.archiver!.alerts = ['cluster "main": archive_command is failing: 3 failed attempts'];
    s.repository.freeBytes = 100;
    s.offsite = [
      { repository: 's3', missing: 3, missingPastGrace: 2 },
      { repository: 'rsync', missing: 0, missingPastGrace: 0, error: 'connection refused' },
    ];
    const alerts = evaluateHealth(s, T);
    expect(alerts.map((a) => a.key)).toEqual([
      'backup-stale:app',
      'verify-stale:app',
      'base-stale',
      'archiver:failing',
      'repository-full',
      'offsite-drift:s3',
      'offsite-unreachable:rsync',
    ]);
    expect(alerts[0]!.message).toBe('main/app: the newest backup finished 25.0 hours ago (threshold 24 hours)');
    expect(alerts[4]!.message).toBe('repository "local" is 90% full (threshold 85%)');
    expect(alerts[5]!.message).toContain('offsite "s3" lacks 2 objects of main (3 with recent ones)');
  });

  it('starts the never-verified clock at the first backup, and alerts when there is no backup at all', () => {
    const s = healthy();
    s.backups[0] = { ...s.backups[0]!, lastVerifiedAt: null, firstAt: hoursAgo(24 * 6) };
    expect(evaluateHealth(s, T)).toEqual([]);
    s.backups[0] = { ...s.backups[0]!, firstAt: hoursAgo(24 * 7 + 1) };
    expect(evaluateHealth(s, T).map((a) => a.message)).toEqual([
      'main/app: no backup verified by a restore in 7 days (threshold 7 days)',
    ]);
    expect(evaluateHealth({ ...healthy(), backups: [] }, T).map((a) => a.key)).toEqual(['backup-missing']);
    expect(
      evaluateHealth({ ...healthy(), archiver: undefined, unreachable: 'connection refused' }, T).map((a) => a.key),
    ).toEqual(['unreachable']);
  });
});

describe('WAL archive alerts', () => {
  it('archived WAL without a base backup fires (nothing to replay it onto); an archive over its size threshold fires', () => {
    const s = healthy();
    s.walArchive = { files: 3, bytes: 3 << 20 };
    expect(evaluateHealth(s, T)).toEqual([]);
    const noBase = { ...s, backups: s.backups.filter((b) => b.kind === 'logical') };
    expect(evaluateHealth(noBase, T).map((a) => a.key)).toEqual(['base-missing']);
    // No WAL archived (archiving off, or not into this repository): a missing base backup is not news.
    expect(evaluateHealth({ ...noBase, walArchive: { files: 0, bytes: 0 } }, T)).toEqual([]);
    expect(evaluateHealth(s, { ...T, maxWalArchiveBytes: 2 << 20 }).map((a) => a.message)).toEqual([
      'cluster "main": the WAL archive holds 3.0 MiB in 3 files, over the alert threshold of 2.0 MiB (walMaintenance.archiveSizeAlertBytes)',
    ]);
  });
});

describe('what local retention keeps for an offsite confirmation', () => {
  const items = [
    { what: 'main/logical/app/20261115T020000Z', committedAt: hoursAgo(24 * 7), repositories: ['s3'] },
    { what: 'main/base/20261101T030000Z', committedAt: hoursAgo(24 * 21), repositories: ['s3', 'far'] },
    { what: 'main/wal/000000010000000000000005', committedAt: hoursAgo(30), repositories: ['far'] },
    { what: 'main/wal/000000010000000000000006', committedAt: hoursAgo(29), repositories: ['far'] },
  ];

  it('is counted per repository, with its oldest', () => {
    expect(offsiteWaitingStatus(items)).toEqual([
      {
        repository: 'far',
        backups: 1,
        walFiles: 2,
        oldest: { what: 'main/base/20261101T030000Z', committedAt: hoursAgo(24 * 21) },
      },
      {
        repository: 's3',
        backups: 2,
        walFiles: 0,
        oldest: { what: 'main/base/20261101T030000Z', committedAt: hoursAgo(24 * 21) },
      },
    ]);
  });

  it('alerts, keyed by repository, once the oldest was committed longer ago than the grace period (48 hours by default)', () => {
    const s = { ...healthy(), offsiteWaiting: offsiteWaitingStatus(items.slice(2)) };
    expect(evaluateHealth(s, T)).toEqual([]); // the daily sync has not had its chance yet
    expect(evaluateHealth(s, { ...T, offsiteWaitingHours: 24 }).map((a) => a.message)).toEqual([
      'offsite "far" has not confirmed 2 WAL files of main that local retention would delete (the oldest, main/wal/000000010000000000000005, committed 30.0 hours ago; threshold 24 hours): they stay on the local disk until its check confirms them; run `pgwarden offsite sync --cluster main` and read its check',
    ]);
    const all = evaluateHealth({ ...healthy(), offsiteWaiting: offsiteWaitingStatus(items) }, T);
    expect(all.map((a) => a.key)).toEqual(['offsite-waiting:far', 'offsite-waiting:s3']);
    expect(all[1]!.message).toContain(
      'has not confirmed 2 backups of main that local retention would delete (the oldest, main/base/20261101T030000Z, committed 21 days ago; threshold 48 hours)',
    );
  });

  it('a retention plan that cannot run is an alert of its own, not a failed check', () => {
    const alerts = evaluateHealth({ ...healthy(), retentionError: 'offsite record far.json is not JSON' }, T);
    expect(alerts).toEqual([
      {
        key: 'retention-plan',
        message: expect.stringContaining(
          'local retention of main cannot plan (offsite record far.json is not JSON): nothing is deleted',
        ),
      },
    ]);
  });
});

describe('notificationDue', () => {
  const a = (key: string) => ({ key, message: key });
  const now = new Date(at);
  it('notifies new alerts at once, repeats a firing set only after repeatHours, and says when all is clear', () => {
    expect(notificationDue({ keys: [], sentAt: null }, [], now, 6)).toBeUndefined();
    expect(notificationDue({ keys: [], sentAt: null }, [a('x')], now, 6)).toBe('alert');
    expect(notificationDue({ keys: ['x'], sentAt: hoursAgo(1) }, [a('x')], now, 6)).toBeUndefined();
    expect(notificationDue({ keys: ['x'], sentAt: hoursAgo(6) }, [a('x')], now, 6)).toBe('alert');
    expect(notificationDue({ keys: ['x'], sentAt: hoursAgo(1) }, [a('x'), a('y')], now, 6)).toBe('alert');
    // One of two resolved (a failed backup's next run succeeded while another alert fires): said at once.
    expect(notificationDue({ keys: ['x', 'y'], sentAt: hoursAgo(1) }, [a('x')], now, 6)).toBe('resolved');
    expect(resolvedKeys({ keys: ['x', 'y'], sentAt: hoursAgo(1) }, [a('x')])).toEqual(['y']);
    expect(notificationDue({ keys: ['x'], sentAt: hoursAgo(1) }, [], now, 6)).toBe('resolved');
  });
});

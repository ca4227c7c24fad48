import { describe, expect, it } from 'vitest';
import { backupsReport } from '../../src/cli/commands/backups.js';
import type { BaseManifest, LogicalManifest } from '../../src/lib/manifest.js';
import { buildRepositoryInfo } from '../../src/lib/repositoryInfo.js';
import type { OffsiteConfirmations } from '../../src/lib/offsiteConfirmed.js';

const common = {
  format: 1 as const,
  cluster: 'main',
  serverVersion: '15.18',
  serverVersionNum: 150018,
  sha256: '0'.repeat(64),
  artifacts: [],
  compression: { algorithm: 'zstd' as const, level: 1 },
  pgwardenVersion: 'test',
};
const logical = (database: string, backupId: string, extra: Partial<LogicalManifest> = {}): LogicalManifest => ({
  ...common,
  kind: 'logical',
  database,
  backupId,
  startedAt: '2026-11-22T02:00:00.000Z',
  finishedAt: '2026-11-22T02:03:00.000Z',
  bytes: 5 * 1024 * 1024,
  encryption: null,
  verifications: [],
  dumpFormat: 'custom',
  tocEntries: 3,
  globals: { rolePasswords: false },
  tables: [],
  ...extra,
});
const base: BaseManifest = {
  ...common,
  kind: 'base',
  backupId: '20261122T030000Z',
  startedAt: '2026-11-22T03:00:00.000Z',
  finishedAt: '2026-11-22T03:10:00.000Z',
  bytes: 3 * 1024 ** 3,
  encryption: { format: 'openpgp', recipients: ['ABCD'] },
  verifications: [{ at: '2026-11-22T04:00:00.000Z', ok: false, method: 'restore', detail: 'row counts differ' }],
  systemIdentifier: '1',
  timeline: 1,
  startLsn: '0/2000028',
  stopLsn: '0/2000100',
};
const seg = (n: number) => `00000001000000000000000${n}`;

function info(
  offsite: Map<string, OffsiteConfirmations | undefined> = new Map([
    [
      'far',
      {
        repository: 'far',
        confirmed: { 'main/logical/app/20261122T020000Z': '2026-11-22T05:00:00.000Z', [`main/wal/${seg(3)}`]: 'x' },
      },
    ],
  ]),
) {
  return buildRepositoryInfo({
    cluster: 'main',
    repository: 'local',
    path: '/var/backups/pgwarden',
    readOn: 'here',
    base: [base],
    // Out of order on purpose: the listing sorts by database, then id.
    logical: [
      logical('app', '20261123T020000Z'),
      logical('app', '20261122T020000Z', {
        verifications: [
          { at: '2026-11-22T04:05:00.000Z', ok: true, method: 'restore' },
          { at: '2026-11-23T04:05:00.000Z', ok: true, method: 'restore' },
        ],
      }),
      logical('accounts', '20261122T020000Z'),
    ],
    wal: [
      { name: seg(4), bytes: 100 },
      { name: '00000002.history', bytes: 40 },
      { name: seg(3), bytes: 200 },
      { name: `${seg(3)}.00000028.backup`, bytes: 10 },
    ],
    offsite,
  });
}

describe('buildRepositoryInfo', () => {
  it('lists base then logical backups in order, with the newest verification and the confirming repositories', () => {
    const r = info();
    expect(r.backups.map((b) => `${b.kind} ${b.database ?? '-'} ${b.backupId}`)).toEqual([
      'base - 20261122T030000Z',
      'logical accounts 20261122T020000Z',
      'logical app 20261122T020000Z',
      'logical app 20261123T020000Z',
    ]);
    expect(r.backups[0]).toMatchObject({
      encrypted: true,
      verified: { ok: false, at: '2026-11-22T04:00:00.000Z' },
      offsite: [],
      timeline: 1,
      stopLsn: '0/2000100',
    });
    expect(r.backups[2]).toMatchObject({
      verified: { ok: true, at: '2026-11-23T04:05:00.000Z' },
      offsite: [{ repository: 'far', confirmedAt: '2026-11-22T05:00:00.000Z' }],
    });
    expect(r.backups[3]!.verified).toBeUndefined();
  });

  it('summarises the WAL archive: segments only for first/last, every file counted and sized', () => {
    expect(info().wal).toEqual({
      files: 4,
      bytes: 350,
      firstSegment: seg(3),
      lastSegment: seg(4),
      offsite: [{ repository: 'far', files: 1 }],
    });
    const none = info(new Map([['far', undefined]]));
    expect(none.wal.offsite).toEqual([{ repository: 'far', files: 0 }]);
    expect(none.backups.every((b) => b.offsite.length === 0)).toBe(true);
  });
});

describe('backupsReport', () => {
  it('one aligned row per backup, local times with the zone, then the WAL line', () => {
    expect(backupsReport(info(), 'UTC')).toEqual([
      'repository "local" (/var/backups/pgwarden), cluster main',
      'BACKUP ID         KIND     DATABASE  SIZE     FINISHED                  VERIFIED                         OFFSITE',
      '20261122T030000Z  base     -         3.0 GiB  Sun 2026-11-22 03:10 UTC  FAILED Sun 2026-11-22 04:00 UTC  none yet',
      '20261122T020000Z  logical  accounts  5.0 MiB  Sun 2026-11-22 02:03 UTC  never                            none yet',
      '20261122T020000Z  logical  app       5.0 MiB  Sun 2026-11-22 02:03 UTC  ok Mon 2026-11-23 04:05 UTC      far',
      '20261123T020000Z  logical  app       5.0 MiB  Sun 2026-11-22 02:03 UTC  never                            none yet',
      `WAL archive: 4 files, 350 B, segments ${seg(3)} .. ${seg(4)}; offsite: far 1 confirmed`,
    ]);
  });

  it('says so when empty, and where it was read when on a worker; no offsite column value without offsite repositories', () => {
    const empty = buildRepositoryInfo({
      cluster: 'main',
      repository: 'local',
      path: '/r',
      readOn: 'db1',
      base: [],
      logical: [],
      wal: [],
      offsite: new Map(),
    });
    expect(backupsReport(empty, 'UTC')).toEqual([
      'repository "local" (/r on db1), cluster main',
      'no backups',
      'WAL archive: empty',
    ]);
    const noOffsite = buildRepositoryInfo({
      cluster: 'main',
      repository: 'local',
      path: '/r',
      readOn: 'here',
      base: [base],
      logical: [],
      wal: [],
      offsite: new Map(),
    });
    expect(backupsReport(noOffsite, 'UTC')[2]).toMatch(/ {2}-$/);
  });
});

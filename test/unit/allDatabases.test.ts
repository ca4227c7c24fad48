import { describe, expect, it } from 'vitest';
import { backupsOfNewestRun } from '../../src/lib/allDatabases.js';
import { databasesToBackUp, isRestoreCopyName, restoreNames } from '../../src/lib/ids.js';

describe('databasesToBackUp ("*")', () => {
  const names = restoreNames('app', '20261122T020000Z', '0197f3a2-aaaa-bbbb-cccc-1234567890ab');
  const long = restoreNames('x'.repeat(60), '20261122T020000Z', 'run123');

  it('skips the kept copies of a restore and the verification scratch databases', () => {
    const all = [
      'app',
      names.preRestoreDatabase,
      names.restoreDatabase,
      long.preRestoreDatabase,
      'pgwarden_verify_20261122t020000z',
      'postgres',
      'shop',
    ];
    expect(databasesToBackUp(all)).toEqual({
      take: ['app', 'postgres', 'shop'],
      skip: all.filter((n) => !['app', 'postgres', 'shop'].includes(n)),
    });
  });

  it('takes the restore copies when asked, never the scratch databases', () => {
    const all = ['app', names.preRestoreDatabase, 'pgwarden_verify_20261122t020000z_locale'];
    expect(databasesToBackUp(all, true)).toEqual({
      take: ['app', names.preRestoreDatabase],
      skip: ['pgwarden_verify_20261122t020000z_locale'],
    });
  });

  it('knows restore copies by their backup id, not by a word in the name', () => {
    expect(isRestoreCopyName('app_pre_restore_20261122t020000z')).toBe(true); // runs before names carried the run
    expect(isRestoreCopyName('app_restore_20261122t020000z_abc_x1y2z3')).toBe(true); // a backup id with a suffix
    expect(isRestoreCopyName('restore_queue')).toBe(false);
    expect(isRestoreCopyName('app_restore_old')).toBe(false);
  });
});

describe('backupsOfNewestRun (verifyBackup "*")', () => {
  it('takes the databases of the newest "*" run, not a later single-database backup nor an older run', () => {
    const got = backupsOfNewestRun([
      { database: 'app', backupId: '20261121T020000Z', allDatabases: true },
      { database: 'old', backupId: '20261121T020000Z', allDatabases: true },
      { database: 'shop', backupId: '20261122T020000Z', allDatabases: true },
      { database: 'app', backupId: '20261122T020000Z', allDatabases: true },
      { database: 'app', backupId: '20261122T090000Z' },
      { database: 'other', backupId: '20261123T020000Z' },
    ]);
    expect(got).toEqual({
      run: '20261122T020000Z',
      targets: [
        { database: 'app', backupId: '20261122T020000Z' },
        { database: 'shop', backupId: '20261122T020000Z' },
      ],
    });
  });

  it('falls back to each database\'s newest backup in a repository without a recorded "*" run', () => {
    expect(
      backupsOfNewestRun([
        { database: 'shop', backupId: '20261121T020000Z' },
        { database: 'app', backupId: '20261122T020000Z' },
        { database: 'app', backupId: '20261121T020000Z' },
      ]),
    ).toEqual({
      targets: [
        { database: 'app', backupId: '20261122T020000Z' },
        { database: 'shop', backupId: '20261121T020000Z' },
      ],
    });
    expect(backupsOfNewestRun([])).toEqual({ targets: [] });
  });
});

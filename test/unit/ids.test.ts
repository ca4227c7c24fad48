import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  backupIdProblem,
  backupIdTime,
  formatBackupId,
  fullBackupWorkflowId,
  isBackupId,
  isSafeName,
  isScratchDatabaseName,
  restoreNames,
} from '../../src/lib/ids.js';

describe('backup ids', () => {
  it('is the UTC start second', () => {
    expect(formatBackupId(new Date('2026-11-22T02:00:00.789Z'))).toBe('20261122T020000Z');
    expect(formatBackupId(new Date('2026-11-22T02:00:00Z'), 'a1')).toBe('20261122T020000Z-a1');
  });

  it('round-trips through its time for any date', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('1970-01-01Z'), max: new Date('9999-12-31Z'), noInvalidDate: true }), (d) => {
        const id = formatBackupId(d);
        expect(isBackupId(id)).toBe(true);
        expect(backupIdTime(id)!.getTime()).toBe(Math.floor(d.getTime() / 1000) * 1000);
      }),
    );
  });

  it('refuses what is not one', () => {
    for (const bad of [
      '',
      '2026-11-22',
      '20261122T020000',
      '20261332T020000Z',
      '20261122T020000Z-',
      '20261122T020000Z-UP',
      '../x',
    ]) {
      expect(isBackupId(bad), bad).toBe(false);
    }
    expect(backupIdProblem('20261122T020000Z')).toBeUndefined();
    expect(backupIdProblem('x/y', '--backup-id')).toBe(
      '--backup-id "x/y" is not of the form 20261122T020000Z[-suffix]',
    );
  });

  it('gives each restore run its own database names, still named after the backup', () => {
    // Temporal's run ids are UUIDv7: two runs a second apart share their first characters, not their last.
    expect(restoreNames('app', '20261122T020000Z', '019ada2e-77aa-7d2e-9c1a-5e2f0a1b2c3d')).toEqual({
      restoreDatabase: 'app_restore_20261122t020000z_1b2c3d',
      preRestoreDatabase: 'app_pre_restore_20261122t020000z_1b2c3d',
    });
    // Runs started before names were per run keep theirs.
    expect(restoreNames('app', '20261122T020000Z-a1')).toEqual({
      restoreDatabase: 'app_restore_20261122t020000z_a1',
      preRestoreDatabase: 'app_pre_restore_20261122t020000z_a1',
    });
  });

  it('keeps both names within 63 bytes for any database name PostgreSQL allows, distinct, and droppable only as staging', () => {
    const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
    // Names that fit keep the database name whole.
    expect(restoreNames('a'.repeat(27), '20261122T020000Z', 'abcdef').preRestoreDatabase).toBe(
      `${'a'.repeat(27)}_pre_restore_20261122t020000z_abcdef`,
    );
    const long = restoreNames(
      'orders_archive_2019_to_2024_x',
      '20261122T020000Z',
      '019ada2e-77aa-7d2e-9c1a-5e2f0a1b2c3d',
    );
    expect(long.preRestoreDatabase).toMatch(/^orders_archive_201_[0-9a-f]{8}_pre_restore_20261122t020000z_1b2c3d$/);
    expect(long.restoreDatabase).toBe(long.preRestoreDatabase.replace('_pre_restore_', '_restore_'));
    const database = fc.oneof(
      fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,62}$/),
      fc
        .string({ unit: 'grapheme', minLength: 1, maxLength: 63 })
        .filter((s) => bytes(s) <= 63 && !s.includes('_restore_')),
    );
    const backupId = fc.oneof(
      fc.constant('20261122T020000Z'),
      fc.stringMatching(/^[a-z0-9]{1,16}$/).map((x) => `20261122T020000Z-${x}`),
    );
    const runId = fc.option(fc.uuid(), { nil: undefined });
    fc.assert(
      fc.property(database, database, backupId, runId, (a, b, id, run) => {
        const x = restoreNames(a, id, run);
        for (const name of Object.values(x)) expect(bytes(name)).toBeLessThanOrEqual(63);
        expect(isScratchDatabaseName(x.restoreDatabase)).toBe(true);
        expect(isScratchDatabaseName(x.preRestoreDatabase)).toBe(false);
        if (a !== b) expect(restoreNames(b, id, run).restoreDatabase).not.toBe(x.restoreDatabase);
      }),
      { numRuns: 2000 },
    );
    // Multibyte names are cut between characters.
    const greek = restoreNames('δ'.repeat(31), '20261122T020000Z-abcdefghijklmnop', 'abcdef');
    expect(bytes(greek.preRestoreDatabase)).toBeLessThanOrEqual(63);
    expect(greek.preRestoreDatabase).toMatch(/^[0-9a-f]{8}_pre_restore_20261122t020000z_abcdefghijklmnop_abcdef$/);
    const mixed = restoreNames(`${'x'.repeat(20)}δδδδδδδδδδ`, '20261122T020000Z', 'abcdef');
    expect(bytes(mixed.preRestoreDatabase)).toBeLessThanOrEqual(63);
    expect(mixed.preRestoreDatabase).not.toContain('\uFFFD');
  });

  it('drops only what pgwarden made', () => {
    expect(isScratchDatabaseName('pgwarden_verify_20261122t020000z')).toBe(true);
    expect(isScratchDatabaseName('app_restore_20261122t020000z_1b2c3d')).toBe(true);
    expect(isScratchDatabaseName('app_pre_restore_20261122t020000z_1b2c3d')).toBe(false);
    expect(isScratchDatabaseName('app')).toBe(false);
  });

  it('names workflows readably', () => {
    expect(fullBackupWorkflowId('main', 'app', '20261122T020000Z')).toBe('pgwarden/main/app/full/20261122T020000Z');
  });

  it('keeps repository path components safe', () => {
    for (const ok of ['app', 'App_2', 'my-db', 'a.b', 'x@y']) expect(isSafeName(ok), ok).toBe(true);
    for (const bad of ['', '.', '..', '../etc', 'a/b', '.hidden', 'a..b', 'with space', 'x'.repeat(64)])
      expect(isSafeName(bad), bad).toBe(false);
  });
});

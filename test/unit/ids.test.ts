import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { backupIdTime, formatBackupId, fullBackupWorkflowId, isBackupId, isSafeName, restoreNames } from '../../src/lib/ids.js';

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
    for (const bad of ['', '2026-11-22', '20261122T020000', '20261332T020000Z', '20261122T020000Z-', '20261122T020000Z-UP', '../x']) {
      expect(isBackupId(bad), bad).toBe(false);
    }
  });

  it('gives each restore run its own database names, still named after the backup', () => {
    // Temporal's run ids are UUIDv7: two runs a second apart share their first characters, not their last.
    expect(restoreNames('app', '20261122T020000Z', '019ada2e-77aa-7d2e-9c1a-5e2f0a1b2c3d')).toEqual({
      restoreDatabase: 'app_restore_20261122t020000z_1b2c3d',
      preRestoreDatabase: 'app_pre_restore_20261122t020000z_1b2c3d',
    });
    // Runs started before names were per run keep theirs.
    expect(restoreNames('app', '20261122T020000Z-a1')).toEqual({ restoreDatabase: 'app_restore_20261122t020000z_a1', preRestoreDatabase: 'app_pre_restore_20261122t020000z_a1' });
    expect(() => restoreNames('a'.repeat(27), '20261122T020000Z', 'abcdef')).not.toThrow();
    expect(() => restoreNames('a'.repeat(28), '20261122T020000Z', 'abcdef')).toThrow(/too long to keep beside its restore/);
  });

  it('names workflows readably', () => {
    expect(fullBackupWorkflowId('main', 'app', '20261122T020000Z')).toBe('pgwarden/main/app/full/20261122T020000Z');
  });

  it('keeps repository path components safe', () => {
    for (const ok of ['app', 'App_2', 'my-db', 'a.b', 'x@y']) expect(isSafeName(ok), ok).toBe(true);
    for (const bad of ['', '.', '..', '../etc', 'a/b', '.hidden', 'a..b', 'with space', 'x'.repeat(64)]) expect(isSafeName(bad), bad).toBe(false);
  });
});

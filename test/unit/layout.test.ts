import { describe, expect, it } from 'vitest';
import { expectedBackupBytes, formatBytes } from '../../src/lib/diskSpace.js';
import { artifactName, joinPath, logicalBackupDir } from '../../src/lib/layout.js';

describe('repository layout', () => {
  it('places logical backups as DESIGN.md says', () => {
    expect(logicalBackupDir('/srv/pgwarden/', 'main', 'app', '20261122T020000Z')).toBe(
      '/srv/pgwarden/main/logical/app/20261122T020000Z',
    );
    expect(joinPath('/', 'a', '/b/')).toBe('/a/b');
  });

  it('shows compression and encryption in the artifact suffix', () => {
    expect(artifactName('dump.pgdump', 'zstd', true)).toBe('dump.pgdump.zst.gpg');
    expect(artifactName('dump.pgdump', 'none', false)).toBe('dump.pgdump');
  });
});

describe('disk space estimate', () => {
  const MiB = 1024 * 1024;
  it('uses the previous backup when there is one, else half the database', () => {
    expect(expectedBackupBytes(1000 * MiB)).toBe(500 * MiB + 64 * MiB);
    expect(expectedBackupBytes(1000 * MiB, 100 * MiB)).toBe(150 * MiB + 64 * MiB);
  });
  it('formats sizes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536 * MiB)).toBe('1.5 GiB');
  });
});

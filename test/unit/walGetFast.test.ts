import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseWalArgs } from '../../src/archive/fastPath.js';
import { fetcherJob } from '../../src/archive/getFast.js';
import { parseConfig } from '../../src/config/index.js';

describe('wal-get fast path', () => {
  const base = { clusters: { main: {} }, repositories: { local: { type: 'local', path: '/srv/pgwarden' } } };

  it('takes the restore_command forms and declines anything else', () => {
    const name = '000000010000000000000003';
    expect(
      parseWalArgs(['-c', '/etc/p.json', 'wal-get', '--cluster', 'main', name, 'pg_wal/RECOVERYXLOG'], 'wal-get'),
    ).toEqual({
      config: '/etc/p.json',
      cluster: 'main',
      positional: [name, 'pg_wal/RECOVERYXLOG'],
    });
    expect(parseWalArgs(['wal-push', '--cluster', 'main', 'pg_wal/x', name], 'wal-get')).toBeUndefined();
    expect(parseWalArgs(['wal-get', '--cluster', 'main', name], 'wal-get')).toBeUndefined();
    expect(parseWalArgs(['--config', '/c', 'wal-get-fetcher', '{}'], 'wal-get')).toBeUndefined();
  });

  it('is off unless the config turns it on: a config as zod writes it out has no fetcher', () => {
    const parsed = JSON.parse(JSON.stringify(parseConfig(base))) as Record<string, unknown>;
    expect(parsed.walGet).toEqual({ async: false, prefetch: 8 });
    expect(fetcherJob(parsed, 'main', '/etc/p.json')).toBeUndefined();
    expect(fetcherJob(base, 'main', '/etc/p.json')).toBeUndefined();
  });

  it('on, with the schema defaults or the config values', () => {
    expect(fetcherJob({ ...base, walGet: { async: true } }, 'main', '/etc/p.json')).toEqual({
      config: '/etc/p.json',
      cluster: 'main',
      archiveDir: '/srv/pgwarden/main/wal',
      spoolDirectory: join(tmpdir(), `pgwarden-get-spool-${process.getuid!()}`, 'main'),
      prefetch: 8,
    });
    const walGet = { async: true, prefetch: 3, spoolDirectory: '/var/spool/pgwarden-get' };
    expect(fetcherJob({ ...base, walGet }, 'main', '/c')).toMatchObject({
      spoolDirectory: '/var/spool/pgwarden-get/main',
      prefetch: 3,
    });
    expect(parseConfig({ ...base, walGet }).walGet).toEqual(walGet);
  });

  it('leaves a section it does not read plainly to the full program', () => {
    for (const walGet of [
      { async: 'yes' },
      { async: true, prefetch: 0 },
      { async: true, prefetch: 65 },
      { async: true, prefetch: 2.5 },
      { async: true, spoolDirectory: '' },
      { async: true, prefech: 4 },
      [],
    ])
      expect(fetcherJob({ ...base, walGet }, 'main', '/c')).toBeUndefined();
    expect(() => parseConfig({ ...base, walGet: { async: true, prefech: 4 } })).toThrow(/prefech/);
  });
});

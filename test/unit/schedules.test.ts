import { describe, expect, it } from 'vitest';
import { parseConfig, type ConfigInput } from '../../src/config/index.js';
import { desiredSchedules, fingerprint, ownedBy } from '../../src/lib/schedules.js';

const base = (
  extra: Partial<ConfigInput['clusters'][string]> = {},
  repositories: ConfigInput['repositories'] = {},
): ConfigInput => ({
  clusters: { main: { ...extra } },
  repositories: { local: { type: 'local', path: '/var/lib/pgwarden' }, ...repositories },
});

describe('desiredSchedules', () => {
  it('gives a cluster without offsite repositories the cron defaults: one nightly backup of every database, and its verification', () => {
    const s = desiredSchedules(parseConfig(base()));
    expect(s.map((x) => [x.id, x.workflowType, x.timing])).toEqual([
      ['pgwarden/main/all/full-daily', 'fullBackup', { cron: '0 2 * * *' }],
      ['pgwarden/main/wal-maintenance', 'walMaintenance', { cron: '0 3 * * *' }],
      ['pgwarden/main/all/verify-daily', 'verifyBackup', { cron: '0 4 * * *' }],
      ['pgwarden/main/base-weekly', 'baseBackup', { cron: '0 3 * * 0' }],
      ['pgwarden/main/pitr-rehearsal-weekly', 'pointInTimeRecovery', { cron: '0 6 * * 0' }],
      ['pgwarden/main/health', 'healthCheck', { every: '15 minutes' }],
    ]);
    expect(s[0]!.input).toEqual({ cluster: 'main', database: '*' });
    // verifyBackup "*" verifies each database the newest "*" backup took.
    expect(s[2]).toMatchObject({
      input: { cluster: 'main', database: '*' },
      labels: { cluster: 'main', database: '*', kind: 'verify' },
    });
    expect(s[2]!.description).toBe('verify-by-restore of the newest backup of every database of main');
    expect(s[4]!.input).toEqual({ cluster: 'main', target: { latest: true }, mode: 'rehearsal' });
  });

  it('keeps verify-daily off only when the operator turns it off', () => {
    const s = desiredSchedules(parseConfig(base({ schedules: { 'verify-daily': false } })));
    expect(s.map((x) => x.job)).not.toContain('verify-daily');
    expect(s.map((x) => x.job)).toContain('full-daily');
  });

  it('schedules backup and verify per listed database, and offsite jobs when the cluster has a remote', () => {
    const s = desiredSchedules(
      parseConfig(base({ databases: ['app', 'billing'] }, { offsite: { type: 's3', bucket: 'backups' } })),
    );
    const ids = s.map((x) => x.id);
    expect(ids).toContain('pgwarden/main/app/full-daily');
    expect(ids).toContain('pgwarden/main/billing/verify-daily');
    expect(ids).not.toContain('pgwarden/main/all/full-daily');
    expect(ids).not.toContain('pgwarden/main/all/verify-daily');
    const wal = s.find((x) => x.id === 'pgwarden/main/offsite-wal')!;
    expect(wal).toMatchObject({
      workflowType: 'offsiteSync',
      input: { cluster: 'main', walOnly: true },
      timing: { every: '6 hours' },
    });
    expect(s.find((x) => x.id === 'pgwarden/main/offsite-daily')!.timing).toEqual({ cron: '0 5 * * *' });
    expect(s.find((x) => x.id === 'pgwarden/main/app/verify-daily')!.labels).toEqual({
      cluster: 'main',
      database: 'app',
      kind: 'verify',
    });
  });

  it('honours per-cluster overrides and refuses unknown jobs and bad intervals', () => {
    const s = desiredSchedules(
      parseConfig(
        base({
          schedules: { 'base-weekly': false, 'full-daily': { cron: '30 1 * * *' }, health: { every: '5 minutes' } },
        }),
      ),
    );
    expect(s.map((x) => x.id)).not.toContain('pgwarden/main/base-weekly');
    expect(s.find((x) => x.job === 'full-daily')!.timing).toEqual({ cron: '30 1 * * *' });
    expect(() => desiredSchedules(parseConfig(base({ schedules: { nightly: { cron: '0 2 * * *' } } })))).toThrow(
      /unknown job "nightly"/,
    );
    expect(() => desiredSchedules(parseConfig(base({ schedules: { health: { every: 'often' } } })))).toThrow(
      /"every" must be like/,
    );
    expect(() => parseConfig(base({ schedules: { health: { cron: '0 2 * *' } } }))).toThrow(/five crontab fields/);
  });

  it('fingerprints what a schedule does, so apply can tell unchanged from updated', () => {
    const config = parseConfig(base());
    const settings = { taskQueue: 'pgwarden', timeZone: 'UTC', catchupWindow: '1 hour', pauseOnFailure: false };
    const [a] = desiredSchedules(config);
    expect(fingerprint(a!, settings)).toBe(fingerprint({ ...a! }, { ...settings }));
    expect(fingerprint(a!, settings)).not.toBe(fingerprint({ ...a!, timing: { cron: '0 1 * * *' } }, settings));
    expect(fingerprint(a!, settings)).not.toBe(fingerprint(a!, { ...settings, timeZone: 'Europe/Berlin' }));
    expect(fingerprint(a!, { ...settings, searchAttributes: false })).not.toBe(
      fingerprint(a!, { ...settings, searchAttributes: true }),
    );
  });

  it('owns only schedules of the named clusters', () => {
    expect(ownedBy('pgwarden/main/app/full-daily', ['main'])).toBe(true);
    expect(ownedBy('pgwarden/other/health', ['main'])).toBe(false);
    expect(ownedBy('nightly-main', ['main'])).toBe(false);
  });
});

describe('the Docker deployment config (deploy/pgwarden.config.json)', () => {
  it('is valid and schedules its database', async () => {
    const { readFile } = await import('node:fs/promises');
    const config = parseConfig(JSON.parse(await readFile('deploy/pgwarden.config.json', 'utf8')));
    expect(config.metrics.port).toBe(9187);
    expect(desiredSchedules(config).map((s) => s.id)).toContain('pgwarden/main/app/full-daily');
  });
});

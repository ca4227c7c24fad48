import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/index.js';
import { applyEnvOverrides } from '../../src/lib/configOverrides.js';
import { replicationSettings } from '../../src/lib/replication.js';

const minimal = {
  clusters: { main: { host: 'db1', passwordEnv: 'MAIN_PW', dataDirectory: '/var/lib/postgresql/15/main' } },
  repositories: { local: { type: 'local', path: '/srv/pgwarden' } },
};

describe('config', () => {
  it('fills defaults', () => {
    const c = parseConfig(minimal);
    expect(c.clusters.main).toMatchObject({
      host: 'db1',
      port: 5432,
      user: 'postgres',
      repository: 'local',
      maintenanceDatabase: 'postgres',
    });
    expect(c.temporal).toEqual({ address: '127.0.0.1:7233', namespace: 'default', taskQueue: 'pgwarden' });
    expect(c.retention).toEqual({
      daily: 7,
      weekly: 4,
      monthly: 12,
      yearly: 2,
      minimum: 3,
      base: { daily: 0, weekly: 2, monthly: 3, yearly: 0, minimum: 2 },
    });
    expect(c.walRetention).toEqual({ window: '14 days' });
    expect(c.compression).toEqual({ algorithm: 'zstd', level: 1 });
  });

  it('names the path of a bad field', () => {
    const bad = { ...minimal, clusters: { main: { ...minimal.clusters.main, port: 'five' } } };
    expect(() => parseConfig(bad)).toThrow(/clusters\.main\.port: /);
    expect(() => parseConfig({ ...minimal, clusters: { main: { repository: 'offsite' } } })).toThrow(
      /clusters\.main\.repository: names repository "offsite", which is not in "repositories"/,
    );
    expect(() => parseConfig({ ...minimal, clusters: { main: { passwrd: 'x' } } })).toThrow(
      /clusters\.main: .*passwrd/,
    );
  });

  it('applies environment overrides by path, parsing JSON values', () => {
    const env = {
      PGWARDEN__clusters__main__port: '5433',
      PGWARDEN__repositories__local__path: '/mnt/backups',
      TEMPORAL_ADDRESS: 'temporal:7233',
      PGWARDEN_TASK_QUEUE: 'pgwarden-eu',
    };
    const c = parseConfig(applyEnvOverrides(minimal, env));
    expect(c.clusters.main!.port).toBe(5433);
    expect(c.repositories.local).toMatchObject({ type: 'local', path: '/mnt/backups' });
    expect(c.temporal).toMatchObject({ address: 'temporal:7233', taskQueue: 'pgwarden-eu' });
  });

  it('loads a file and says which one is missing or broken', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pgwarden-config-'));
    const file = join(dir, 'pgwarden.config.json');
    expect(() => loadConfig(file, {})).toThrow(ConfigError);
    expect(() => loadConfig(file, {})).toThrow(/cannot read config .*pgwarden\.config\.json: file not found/);
    await writeFile(file, '{ not json');
    expect(() => loadConfig(file, {})).toThrow(/cannot read config/);
    await writeFile(file, JSON.stringify(minimal));
    expect(loadConfig(undefined, { PGWARDEN_CONFIG: file }).clusters.main!.host).toBe('db1');
    await rm(dir, { recursive: true, force: true });
  });
});

describe('config: URLs that would carry a secret into messages', () => {
  const base = { clusters: { main: {} }, repositories: { local: { type: 'local', path: '/srv/pgwarden' } } };
  it('refuses credentials in a webhook URL or an S3 endpoint, naming what to use instead', () => {
    expect(() =>
      parseConfig({ ...base, notifications: { webhook: { url: 'https://user:tok@hooks.example/x' } } }),
    ).toThrow(/must not carry credentials; use tokenEnv/);
    const s3 = {
      type: 's3',
      bucket: 'backups',
      endpoint: 'https://AKID:SECRET@s3.example',
      accessKeyIdEnv: 'K',
      secretAccessKeyEnv: 'S',
    };
    expect(() => parseConfig({ ...base, repositories: { ...base.repositories, far: s3 } })).toThrow(
      /must not carry credentials; use accessKeyIdEnv/,
    );
    expect(() =>
      parseConfig({
        ...base,
        repositories: { ...base.repositories, far: { ...s3, endpoint: 'https://s3.example' } },
        notifications: { webhook: { url: 'https://hooks.example/x' } },
      }),
    ).not.toThrow();
  });
});

describe('config: standbys, backupFrom and replication thresholds', () => {
  const standby = { name: 'replica1', host: 'db2', port: 5433 };
  const withStandbys = (cluster: Record<string, unknown>) => ({
    ...minimal,
    clusters: { main: { ...minimal.clusters.main, ...cluster } },
  });

  it('leaves a cluster without standbys as it was, and fills the defaults where they are used', () => {
    const plain = parseConfig(minimal).clusters.main!;
    expect(plain).not.toHaveProperty('standbys');
    expect(plain).not.toHaveProperty('backupFrom');
    expect(plain).not.toHaveProperty('replication');
    expect(replicationSettings(plain)).toEqual({
      backupFrom: 'primary',
      lagLimitBytes: 1048576,
      alertLagBytes: 16 * 1048576,
      alertLagSeconds: 300,
    });
    const replicated = parseConfig(withStandbys({ standbys: [standby] })).clusters.main!;
    expect(replicated.standbys).toEqual([standby]);
    expect(replicationSettings(replicated).backupFrom).toBe('prefer-standby');
    const chosen = parseConfig(
      withStandbys({
        standbys: [{ ...standby, user: 'monitor', passfile: '/etc/pgwarden/pgpass', dataDirectory: '/srv/pg' }],
        backupFrom: 'primary',
        replication: { lagLimitBytes: 0, alertLagBytes: 1000, alertLagSeconds: 2.5 },
      }),
    ).clusters.main!;
    expect(replicationSettings(chosen)).toEqual({
      backupFrom: 'primary',
      lagLimitBytes: 0,
      alertLagBytes: 1000,
      alertLagSeconds: 2.5,
    });
  });

  it('refuses what cannot work, naming the field', () => {
    const refused: [Record<string, unknown>, RegExp][] = [
      [{ standbys: [{ ...standby, port: 0 }] }, /clusters\.main\.standbys\.0\.port/],
      [{ standbys: [{ name: 'replica1', port: 5433 }] }, /clusters\.main\.standbys\.0\.host/],
      [{ standbys: [{ ...standby, passwordEnv: 'A', passfile: '/p' }] }, /passwordEnv or passfile, not both/],
      [{ standbys: [{ ...standby, pasword: 'x' }] }, /pasword/],
      [{ standbys: [standby, { ...standby, host: 'db3' }] }, /standby names must be unique/],
      [{ standbys: [] }, /clusters\.main\.standbys/],
      [{ backupFrom: 'standby' }, /clusters\.main\.backupFrom: "standby" needs at least one entry in standbys/],
      [{ standbys: [standby], backupFrom: 'replica' }, /clusters\.main\.backupFrom/],
      [{ replication: { lagLimitBytes: -1 } }, /clusters\.main\.replication\.lagLimitBytes/],
      [{ replication: { lagLimit: 5 } }, /lagLimit/],
    ];
    for (const [cluster, message] of refused) expect(() => parseConfig(withStandbys(cluster))).toThrow(message);
  });
});

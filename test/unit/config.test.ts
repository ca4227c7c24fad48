import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/index.js';
import { applyEnvOverrides } from '../../src/lib/configOverrides.js';

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

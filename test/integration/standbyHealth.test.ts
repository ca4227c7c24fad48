// Standby monitoring against a real primary and a real streaming standby (pg_basebackup -R, test/
// helpers/standby.ts): healthCheck's activity and the worker's metrics. A healthy standby raises
// nothing and streams with small lag; replay paused while the primary writes raises "replay paused"
// and the lag alert, and resuming it brings the all-clear; a stopped standby is unreachable and
// not streaming. The credentials reach the activities only through their env (passwordEnv).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHealthActivities } from '../../src/activities/health/health.js';
import type { Config } from '../../src/config/index.js';
import type { Alert } from '../../src/lib/health.js';
import { createMetricsRegistry } from '../../src/worker/metrics.js';
import { testConfig, testSecrets } from '../helpers/config.js';
import { startCluster, type TestCluster } from '../helpers/postgres.js';
import { startStandby, type TestStandby } from '../helpers/standby.js';

let primary: TestCluster;
let standby: TestStandby;
let dir: string;
let config: Config;
let health: ReturnType<typeof createHealthActivities>;

const standbyAlerts = async (): Promise<Alert[]> =>
  (await health.checkHealth({ cluster: 'main' })).alerts.filter((a) => a.key.startsWith('standby-'));
/** Polls the check until `done` holds for its standby alerts (replication settles in well under a second). */
async function alertsUntil(done: (keys: string[]) => boolean, timeoutMs = 20_000): Promise<Alert[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const alerts = await standbyAlerts();
    if (done(alerts.map((a) => a.key)) || Date.now() > until) return alerts;
    await new Promise((r) => setTimeout(r, 200));
  }
}
async function metrics(): Promise<Record<string, number>> {
  const text = await createMetricsRegistry(config, testSecrets(primary), undefined, 0).metrics();
  return Object.fromEntries(
    [...text.matchAll(/^(pgwarden_standby_\w+)\{cluster="main",standby="replica1"\} (\S+)$/gm)].map((m) => [
      m[1]!,
      Number(m[2]),
    ]),
  );
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-standby-health-'));
  primary = await startCluster();
  standby = await startStandby(primary, 'replica1');
  config = testConfig({ cluster: primary, repository: join(dir, 'repo'), taskQueue: 'standby-health' });
  config.clusters.main!.standbys = [{ name: 'replica1', host: standby.host, port: standby.port }];
  config.clusters.main!.replication = { alertLagBytes: 1024 * 1024 };
  health = createHealthActivities({ config, env: testSecrets(primary) });
}, 120_000);

afterAll(async () => {
  await standby?.remove();
  await primary?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('standby monitoring', () => {
  it('a healthy standby: no alert, streaming with small lag, a backup source', async () => {
    expect(await standbyAlerts()).toEqual([]);
    const { snapshot } = await health.checkHealth({ cluster: 'main' });
    expect(snapshot.replication?.standbys).toEqual([
      expect.objectContaining({ name: 'replica1', reachable: true, inRecovery: true, streaming: true, eligible: true }),
    ]);
    const m = await metrics();
    expect(m).toMatchObject({
      pgwarden_standby_streaming: 1,
      pgwarden_standby_replay_paused: 0,
      pgwarden_standby_up: 1,
    });
    expect(m.pgwarden_standby_lag_bytes).toBeLessThan(1024 * 1024);
  });

  it('replay paused while the primary writes: "replay paused" and the lag alert; resumed: the all-clear', async () => {
    await standby.query('SELECT pg_wal_replay_pause()');
    await primary.query(`CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 20000) g`);
    const alerts = await alertsUntil((k) => k.includes('standby-lag:replica1'));
    expect(alerts.map((a) => a.key).sort()).toEqual(['standby-lag:replica1', 'standby-replay-paused:replica1']);
    expect(alerts.find((a) => a.key === 'standby-lag:replica1')!.message).toMatch(
      /^standby "replica1" of main \(127\.0\.0\.1:\d+\): replay is [\d.]+ MiB .*behind the primary \(alert thresholds 1\.0 MiB, 300 s/,
    );
    expect(await metrics()).toMatchObject({ pgwarden_standby_replay_paused: 1, pgwarden_standby_streaming: 1 });
    const at = () => new Date().toISOString();
    expect(await health.notifyHealth({ cluster: 'main', alerts, at: at() })).toMatchObject({ sent: 'alert' });

    await standby.query('SELECT pg_wal_replay_resume()');
    expect(await alertsUntil((k) => k.length === 0)).toEqual([]);
    expect(await health.notifyHealth({ cluster: 'main', alerts: [], at: at() })).toMatchObject({ sent: 'resolved' });
    expect(await standby.query('SELECT count(*)::int AS n FROM filler')).toEqual([{ n: 20000 }]);
  });

  it('a stopped standby: unreachable and not streaming', async () => {
    await standby.stop();
    const alerts = await alertsUntil((k) => k.includes('standby-not-streaming:replica1'));
    expect(alerts.map((a) => a.key).sort()).toEqual(['standby-not-streaming:replica1', 'standby-unreachable:replica1']);
    expect(alerts[0]!.message).toMatch(/standby "replica1" of main .*unreachable: .*ECONNREFUSED/);
    expect(await metrics()).toMatchObject({ pgwarden_standby_streaming: 0, pgwarden_standby_up: 0 });
  });
});

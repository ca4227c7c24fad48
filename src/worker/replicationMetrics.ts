// Per-standby replication series for the worker's /metrics, from the same snapshots as the rest
// (src/worker/metrics.ts): only clusters that list standbys have them.
import { Gauge, type Registry } from 'prom-client';
import type { HealthSnapshot } from '../lib/health.js';
import type { StandbyState } from '../lib/replication.js';

export function registerReplicationGauges(
  registry: Registry,
  observe: () => Promise<{ snapshots: HealthSnapshot[] }>,
): void {
  const gauge = (name: string, help: string, value: (s: StandbyState) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['cluster', 'standby'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const snap of (await observe()).snapshots)
          for (const s of snap.replication?.standbys ?? []) {
            const v = value(s);
            if (v !== null) this.set({ cluster: snap.cluster, standby: s.name }, v);
          }
      },
    });
  gauge(
    'pgwarden_standby_lag_bytes',
    "Bytes of WAL the standby has not replayed yet (the primary's current position minus its replay position)",
    (s) => s.lagBytes,
  );
  gauge('pgwarden_standby_lag_seconds', "The standby's replay lag in seconds", (s) => s.lagSeconds);
  gauge(
    'pgwarden_standby_streaming',
    '1 when the primary lists the standby streaming and its WAL receiver streams',
    (s) => (s.streaming ? 1 : 0),
  );
  gauge('pgwarden_standby_replay_paused', "1 when the standby's WAL replay is paused", (s) => (s.replayPaused ? 1 : 0));
  gauge('pgwarden_standby_up', '1 when pgwarden could query the standby and it is in recovery', (s) =>
    s.reachable && s.inRecovery ? 1 : 0,
  );
}

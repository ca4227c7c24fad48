// Prometheus metrics served by the worker (config `metrics.port`): read from the repositories, the
// clusters and Temporal when scraped (cached briefly), so every worker reports the same truth
// whichever ran the last backup. Offsite drift comes from the last healthCheck: listing a remote
// on every scrape would cost money.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import { Counter, Gauge, Registry } from 'prom-client';
import { createHealthActivities, readOffsiteStatus } from '../activities/health/health.js';
import { readRunState } from '../activities/health/runWatch.js';
import type { Config } from '../config/index.js';
import type { HealthSnapshot, OffsiteStatus } from '../lib/health.js';
import type { ProcedureRecord, RunWatchState } from '../lib/runAlerts.js';
import { kindOfWorkflow, matchesById, quote } from '../lib/visibility.js';
import { registerReplicationGauges } from './replicationMetrics.js';
import type { Progress } from '../workflows/messages.js';

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

interface Observed {
  snapshots: HealthSnapshot[];
  offsite: Map<string, OffsiteStatus[]>;
  /** Each cluster's runs as the last healthCheck recorded them. */
  runs: Map<string, RunWatchState>;
  /** Runs waiting at `approve`, per cluster and kind; undefined without a Temporal client. */
  approvals?: Map<string, number>;
}

/** Prometheus may scrape from several servers at once: one collection serves them all for a while. */
const CACHE_MS = 10_000;

export function createMetricsRegistry(
  config: Config,
  env: NodeJS.ProcessEnv,
  client?: Client,
  cacheMs = CACHE_MS,
): Registry {
  const health = createHealthActivities({ config, env });
  let cached: { at: number; value: Promise<Observed> } | undefined;
  const observe = (): Promise<Observed> => {
    if (!cached || Date.now() - cached.at >= cacheMs) cached = { at: Date.now(), value: collect() };
    return cached.value;
  };
  async function collect(): Promise<Observed> {
    const clusters = Object.keys(config.clusters);
    // One unreadable repository leaves its cluster's series out, not the whole scrape.
    const settled = await Promise.allSettled(
      clusters.map((cluster) => health.collectHealth({ cluster, offsite: false })),
    );
    const snapshots = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const offsite = new Map(
      await Promise.all(clusters.map(async (c) => [c, await readOffsiteStatus(config, c)] as const)),
    );
    const runs = new Map(await Promise.all(clusters.map(async (c) => [c, await readRunState(config, c)] as const)));
    // Temporal down or slow: this one series is left out (not zero), the rest still serve.
    const approvals = client
      ? await Promise.race([
          waitingForApproval(client, clusters, config.temporal.taskQueue),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 5000).unref()),
        ]).catch(() => undefined)
      : undefined;
    return { snapshots, offsite, runs, approvals };
  }

  const registry = new Registry();
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, o: Observed) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        fill(this, await observe());
      },
    });
  const seconds = (iso: string) => new Date(iso).getTime() / 1000;
  // Failed runs per procedure, counted by healthCheck from Temporal (it survives worker restarts).
  new Counter({
    name: 'pgwarden_run_failures_total',
    help: 'Failed, terminated and timed-out runs of a procedure, as counted by healthCheck',
    labelNames: ['cluster', 'procedure', 'database'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [, r] of eachProcedure(await observe()))
        this.inc({ cluster: r.cluster, procedure: r.procedure, database: r.database ?? '' }, r.failures);
    },
  });
  const procedureGauge = (name: string, help: string, value: (r: ProcedureRecord) => number) =>
    gauge(name, help, ['cluster', 'procedure', 'database'], (g, o) => {
      for (const [, r] of eachProcedure(o))
        g.set({ cluster: r.cluster, procedure: r.procedure, database: r.database ?? '' }, value(r));
    });
  procedureGauge(
    'pgwarden_run_last_duration_seconds',
    'Duration of the newest closed run of a procedure',
    (r) => (Date.parse(r.closedAt) - Date.parse(r.startedAt)) / 1000,
  );
  procedureGauge(
    'pgwarden_run_last_failed',
    '1 when the newest closed run of a procedure failed (cleared by its next success)',
    (r) => (r.ok ? 0 : 1),
  );
  procedureGauge('pgwarden_run_last_end_timestamp_seconds', 'When the newest closed run of a procedure ended', (r) =>
    seconds(r.closedAt),
  );
  gauge(
    'pgwarden_health_check_last_timestamp_seconds',
    "When a healthCheck last looked at the cluster's runs (stops advancing when healthChecks fail or do not run)",
    ['cluster'],
    (g, o) => {
      for (const [cluster, state] of o.runs) if (state.lookedAt) g.set({ cluster }, seconds(state.lookedAt));
    },
  );
  gauge('pgwarden_wal_archive_bytes', "Stored bytes of the cluster's WAL archive", ['cluster'], (g, o) => {
    for (const s of o.snapshots) if (s.walArchive) g.set({ cluster: s.cluster }, s.walArchive.bytes);
  });
  gauge('pgwarden_wal_archive_files', "Files in the cluster's WAL archive", ['cluster'], (g, o) => {
    for (const s of o.snapshots) if (s.walArchive) g.set({ cluster: s.cluster }, s.walArchive.files);
  });
  gauge(
    'pgwarden_wal_archive_alert_bytes',
    'The WAL archive size alert threshold (walMaintenance.archiveSizeAlertBytes), when set',
    ['cluster'],
    (g, o) => {
      const limit = config.walMaintenance.archiveSizeAlertBytes;
      if (limit !== undefined) for (const s of o.snapshots) g.set({ cluster: s.cluster }, limit);
    },
  );
  gauge(
    'pgwarden_repository_stored_bytes',
    "Bytes the cluster's committed backups and WAL take in the repository",
    ['cluster', 'kind'],
    (g, o) => {
      for (const s of o.snapshots) {
        if (s.stored)
          for (const kind of ['logical', 'base'] as const) g.set({ cluster: s.cluster, kind }, s.stored[kind]);
        if (s.walArchive) g.set({ cluster: s.cluster, kind: 'wal' }, s.walArchive.bytes);
      }
    },
  );

  gauge(
    'pgwarden_backup_last_success_timestamp_seconds',
    'Finish time of the newest committed backup',
    ['cluster', 'kind', 'database'],
    (g, o) => {
      for (const s of o.snapshots)
        for (const b of s.backups)
          if (b.lastAt) g.set({ cluster: s.cluster, kind: b.kind, database: b.database ?? '' }, seconds(b.lastAt));
    },
  );
  gauge(
    'pgwarden_backup_last_size_bytes',
    'Stored bytes of the newest committed backup',
    ['cluster', 'kind', 'database'],
    (g, o) => {
      for (const s of o.snapshots)
        for (const b of s.backups)
          if (b.lastBytes !== null)
            g.set({ cluster: s.cluster, kind: b.kind, database: b.database ?? '' }, b.lastBytes);
    },
  );
  gauge(
    'pgwarden_verified_restore_age_seconds',
    'Seconds since a backup of the database was last verified by a restore (since its first backup when never)',
    ['cluster', 'database'],
    (g, o) => {
      for (const s of o.snapshots) {
        for (const b of s.backups) {
          const since = b.lastVerifiedAt ?? b.firstAt;
          if (b.kind === 'logical' && since)
            g.set(
              { cluster: s.cluster, database: b.database! },
              Math.max(0, (new Date(s.at).getTime() - new Date(since).getTime()) / 1000),
            );
        }
      }
    },
  );
  gauge('pgwarden_cluster_up', '1 when pgwarden could query the cluster', ['cluster'], (g, o) => {
    for (const s of o.snapshots) g.set({ cluster: s.cluster }, s.archiver ? 1 : 0);
  });
  gauge(
    'pgwarden_wal_archive_lag_seconds',
    'Seconds since the last archived WAL file while segments wait to be archived (0 when none wait)',
    ['cluster'],
    (g, o) => {
      for (const s of o.snapshots)
        if (s.archiver)
          g.set(
            { cluster: s.cluster },
            s.archiver.segmentsWaiting === 0 ? 0 : (s.archiver.secondsSinceLastArchived ?? 0),
          );
    },
  );
  gauge(
    'pgwarden_wal_archive_failed_count',
    'Failed archive_command runs since the statistics reset (pg_stat_archiver)',
    ['cluster'],
    (g, o) => {
      for (const s of o.snapshots) if (s.archiver) g.set({ cluster: s.cluster }, s.archiver.failedCount);
    },
  );
  gauge(
    'pgwarden_repository_free_bytes',
    'Free bytes on the file system of a local repository',
    ['repository'],
    (g, o) => {
      for (const s of o.snapshots) g.set({ repository: s.repository.name }, s.repository.freeBytes);
    },
  );
  gauge('pgwarden_repository_size_bytes', 'Size of the file system of a local repository', ['repository'], (g, o) => {
    for (const s of o.snapshots) g.set({ repository: s.repository.name }, s.repository.totalBytes);
  });
  gauge(
    'pgwarden_offsite_missing_objects',
    'Committed objects an offsite repository lacks, as of the last healthCheck',
    ['cluster', 'repository'],
    (g, o) => {
      for (const [cluster, list] of o.offsite)
        for (const r of list) if (!r.error) g.set({ cluster, repository: r.repository }, r.missing);
    },
  );
  gauge(
    'pgwarden_approvals_waiting',
    'Restores and recoveries waiting at their approve step',
    ['cluster', 'kind'],
    (g, o) => {
      for (const [key, n] of o.approvals ?? []) {
        const [cluster, kind] = key.split('\0');
        g.set({ cluster: cluster!, kind: kind! }, n);
      }
    },
  );
  registerReplicationGauges(registry, observe);
  return registry;
}

const eachProcedure = (o: Observed) =>
  [...o.runs].flatMap(([cluster, state]) => Object.values(state.procedures).map((r) => [cluster, r] as const));

/** This deployment's (its task queue's) restores and recoveries waiting at `approve`. */
async function waitingForApproval(client: Client, clusters: string[], taskQueue: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const query = `WorkflowType IN ('pointInTimeRecovery', 'restoreDatabase') AND ExecutionStatus = 'Running' AND TaskQueue = ${quote(taskQueue)}`;
  for await (const w of client.workflow.list({ query })) {
    const cluster = clusters.find((c) => matchesById(w.workflowId, { cluster: c }));
    if (!cluster) continue;
    // A run whose worker is down cannot answer: it is not counted rather than stall the scrape.
    const progress = await Promise.race([
      client.workflow
        .getHandle(w.workflowId, w.runId)
        .query<Progress>('progress')
        .catch(() => undefined),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000).unref()),
    ]);
    if (progress?.step !== 'approve') continue;
    const key = `${cluster}\0${kindOfWorkflow(w.type) ?? w.type}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

export async function startMetricsServer(options: {
  config: Config;
  env: NodeJS.ProcessEnv;
  client?: Client;
  port?: number;
  host?: string;
  cacheMs?: number;
}): Promise<MetricsServer> {
  const registry = createMetricsRegistry(options.config, options.env, options.client, options.cacheMs);
  const server: Server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('pgwarden serves /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
    );
  });
  const host = options.host ?? options.config.metrics.host;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? options.config.metrics.port ?? 0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// healthCheck's activities and the metrics' source: what a cluster's repository, archiver and
// offsite copies look like now (src/lib/health.ts decides what is wrong), and the notifications.
// Reading only, except the small notification state kept beside the cluster's backups.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Config } from '../../config/index.js';
import {
  evaluateHealth,
  notificationDue,
  offsiteWaitingStatus,
  resolvedKeys,
  type Alert,
  type HealthSnapshot,
  type HealthThresholds,
  type NotifiedState,
  type OffsiteStatus,
  type OffsiteWaitingStatus,
} from '../../lib/health.js';
import { runResolvedLine } from '../../lib/runAlerts.js';
import { backupIdTime } from '../../lib/ids.js';
import { mkdirPrivate, writeFileAtomic } from '../../host/atomicFile.js';
import { sendNotification, type Delivery } from './notify.js';
import { createOffsiteActivities } from '../offsite/sync.js';
import { offsiteNames } from '../../lib/offsiteNames.js';
import { readRunState, stateUnwritable, watchRuns } from './runWatch.js';
import { openRepository } from '../../storage/clusterRepository.js';
import { createRetentionActivities } from '../retention.js';
import { createWalMaintenanceActivities } from '../walMaintenance.js';
import { backupStatus, storedBytes } from './backups.js';
import { collectReplication } from './replication.js';
import { replicationAlerts, replicationSettings } from '../../lib/replication.js';

export interface HealthReport {
  snapshot: HealthSnapshot;
  alerts: Alert[];
}

export interface HealthNotification {
  /** What was sent, if anything: `alert`, `resolved`; undefined when nothing was due. */
  sent?: 'alert' | 'resolved';
  delivery?: Delivery;
  /** Why the notification could not be delivered (after the activity's retries); tried again next check. */
  error?: string;
  /** Sent, but the record of it could not be written (a full disk): the next check sends it again. */
  unrecorded?: string;
}

// Small state files beside a cluster's backups (healthCheck runs are independent workflows): what
// was last notified, and the offsite drift the last check found (for the metrics).
const NOTIFIED_FILE = 'health-notified.json';
const OFFSITE_FILE = 'health-offsite.json';

/** The offsite drift the last healthCheck found; empty before the first. */
export async function readOffsiteStatus(config: Config, cluster: string): Promise<OffsiteStatus[]> {
  const repo = openRepository(config, cluster);
  return readFile(join(repo.root, cluster, OFFSITE_FILE), 'utf8').then(
    (t) => JSON.parse(t) as OffsiteStatus[],
    () => [],
  );
}

export function createHealthActivities({ config, env }: { config: Config; env: NodeJS.ProcessEnv }) {
  const wal = createWalMaintenanceActivities({ config, env });
  const retention = createRetentionActivities({ config, env });
  const offsite = createOffsiteActivities({ config, env });

  /** The snapshot; `offsite: false` skips listing the remotes (the metrics take drift from the last healthCheck). */
  async function collectHealth(input: { cluster: string; offsite?: boolean }): Promise<HealthSnapshot> {
    const repo = openRepository(config, input.cluster);
    const at = new Date();
    const backups = await backupStatus(repo, config.clusters[input.cluster]!.databases);
    const snapshot: HealthSnapshot = {
      cluster: input.cluster,
      at: at.toISOString(),
      backups,
      repository: { name: repo.name, ...(await repo.usage()) },
      offsite: [],
      stored: await storedBytes(repo, backups),
    };
    const archive = await wal.walArchiveSize({ cluster: input.cluster }).catch(() => undefined);
    if (archive) snapshot.walArchive = { files: archive.files, bytes: archive.bytes };
    try {
      const a = await wal.archiverHealth({ cluster: input.cluster });
      snapshot.archiver = {
        secondsSinceLastArchived: a.secondsSinceLastArchived,
        segmentsWaiting: a.segmentsWaiting,
        failedCount: a.failedCount,
        alerts: a.alerts,
      };
    } catch (err) {
      snapshot.unreachable = (err as Error).message;
    }
    const replication = await collectReplication(config, env, input.cluster);
    if (replication) snapshot.replication = replication;
    if (input.offsite !== false) {
      for (const repository of offsiteNames(config, input.cluster)) {
        const status: OffsiteStatus = { repository, missing: 0, missingPastGrace: 0 };
        try {
          Object.assign(
            status,
            await offsite.offsiteDrift(
              { cluster: input.cluster, repository, graceHours: config.health.offsiteGraceHours },
              at,
            ),
          );
        } catch (err) {
          status.error = (err as Error).message;
        }
        snapshot.offsite.push(status);
      }
      // A plan that cannot run (a corrupt record, an unreadable history file) is one more alert,
      // never a failed check that silences every other alert.
      if (snapshot.offsite.length > 0) {
        snapshot.offsiteWaiting = await offsiteWaiting(input.cluster).catch((err: Error) => {
          snapshot.retentionError = (err.cause instanceof Error ? err.cause.message : err.message).split('\n')[0];
          return undefined;
        });
      }
    }
    return snapshot;
  }

  /**
   * What local retention keeps only for an offsite confirmation: its plans run dry (logical per
   * database, base, WAL), each waiting backup dated by its id, each WAL file by its archiving.
   */
  async function offsiteWaiting(cluster: string): Promise<OffsiteWaitingStatus[]> {
    const items: { what: string; committedAt: string; repositories: string[] }[] = [];
    const backup = (what: string, w: { backupId: string; repositories: string[] }) =>
      items.push({ what, committedAt: backupIdTime(w.backupId)?.toISOString() ?? '', repositories: w.repositories });
    for (const database of await retention.listBackedUpDatabases({ cluster })) {
      const r = await retention.applyLogicalRetention({ cluster, database, dryRun: true });
      for (const w of r.waitingOffsite ?? []) backup(`${cluster}/logical/${database}/${w.backupId}`, w);
    }
    for (const w of (await retention.applyBaseRetention({ cluster, dryRun: true })).waitingOffsite ?? [])
      backup(`${cluster}/base/${w.backupId}`, w);
    const walPlan = await wal.applyWalRetention({ cluster, dryRun: true });
    if (walPlan.waitingOffsiteFiles?.length) {
      const records = await openRepository(config, cluster).wal.list();
      for (const f of walPlan.waitingOffsiteFiles)
        items.push({
          what: `${cluster}/wal/${f.name}`,
          committedAt: records.get(f.name)?.archivedAt ?? '',
          repositories: f.repositories,
        });
    }
    return offsiteWaitingStatus(items);
  }

  /**
   * The snapshot and its alerts. A state file that cannot be written (a full repository disk) is
   * one more alert, never a failed check: the repository-full alert must still go out.
   */
  async function checkHealth(input: { cluster: string }): Promise<HealthReport> {
    const snapshot = await collectHealth({ cluster: input.cluster });
    const repo = openRepository(config, input.cluster);
    const offsiteFile = join(repo.root, input.cluster, OFFSITE_FILE);
    const unwritable = await writeState(offsiteFile, snapshot.offsite).then(
      () => [],
      (err: unknown) => [stateUnwritable(offsiteFile, err)],
    );
    const runs = await watchRuns(
      config,
      input.cluster,
      new Date(),
      (await readNotified(join(repo.root, input.cluster, NOTIFIED_FILE))).keys,
    );
    const standbys = snapshot.replication
      ? replicationAlerts(input.cluster, snapshot.replication, replicationSettings(config.clusters[input.cluster]!))
      : [];
    return {
      snapshot,
      alerts: [...evaluateHealth(snapshot, healthThresholds(config)), ...standbys, ...runs.alerts, ...unwritable],
    };
  }

  /** Sends the alerts when due (src/lib/health.ts notificationDue), then records what was sent. */
  async function notifyHealth(input: { cluster: string; alerts: Alert[]; at: string }): Promise<HealthNotification> {
    const repo = openRepository(config, input.cluster);
    const stateFile = join(repo.root, input.cluster, NOTIFIED_FILE);
    const previous = await readNotified(stateFile);
    const due = notificationDue(previous, input.alerts, new Date(input.at), config.health.repeatHours);
    if (!due) return {};
    // What cleared, each in a line: a failed procedure names the run that succeeded.
    const runs = await readRunState(config, input.cluster);
    const resolved = resolvedKeys(previous, input.alerts).map(
      (k) => runResolvedLine(runs, k, previous.messages?.[k]) ?? `Resolved: ${previous.messages?.[k] ?? k}`,
    );
    const n = input.alerts.length;
    const delivery = await sendNotification(config, env, {
      event: due,
      cluster: input.cluster,
      title:
        due === 'alert'
          ? `${input.cluster}: ${n} health alert${n === 1 ? '' : 's'}`
          : n === 0
            ? `${input.cluster}: all health checks pass again`
            : `${input.cluster}: ${resolved.length} resolved, ${n} still firing`,
      lines: [...resolved, ...input.alerts.map((a) => (due === 'resolved' ? `Still firing: ${a.message}` : a.message))],
      at: input.at,
    });
    const messages = Object.fromEntries(input.alerts.map((a) => [a.key, a.message]));
    // Sent but not recorded (a full disk): the next check sends it again. At least once, never silent.
    const unrecorded = await writeState(stateFile, {
      keys: input.alerts.map((a) => a.key).sort(),
      sentAt: input.at,
      messages,
    } satisfies NotifiedState).then(
      () => undefined,
      (err: Error) => `cannot record it in ${stateFile}: ${err.message}`,
    );
    return { sent: due, delivery, ...(unrecorded ? { unrecorded } : {}) };
  }

  /** A restore or recovery waits for a human: tell them what and how to answer. */
  async function notifyApproval(input: { cluster: string; workflowId: string; what: string }): Promise<Delivery> {
    return sendNotification(config, env, {
      event: 'approval',
      cluster: input.cluster,
      workflowId: input.workflowId,
      title: `${input.cluster}: approval needed for ${input.workflowId}`,
      lines: [
        input.what,
        `Approve: pgwarden approve ${input.workflowId} --approver NAME --reason TEXT`,
        `Reject:  pgwarden reject ${input.workflowId} --approver NAME --reason TEXT`,
        `Or send the "approve" signal from the Temporal UI, with {"approver": "...", "reason": "..."}.`,
      ],
      at: new Date().toISOString(),
    });
  }

  return { collectHealth, checkHealth, notifyHealth, notifyApproval };
}

/** What the last notification sent; nothing before the first (or when unreadable: then it is sent again). */
async function readNotified(file: string): Promise<NotifiedState> {
  return readFile(file, 'utf8').then(
    (t) => JSON.parse(t) as NotifiedState,
    () => ({ keys: [], sentAt: null }),
  );
}

async function writeState(file: string, value: unknown): Promise<void> {
  await mkdirPrivate(dirname(file));
  await writeFileAtomic(file, JSON.stringify(value) + '\n');
}

/** healthCheck's thresholds: `health.*` and the WAL archive's size limit. */
export function healthThresholds(config: Config): HealthThresholds {
  return {
    ...config.health,
    ...(config.walMaintenance.archiveSizeAlertBytes !== undefined
      ? { maxWalArchiveBytes: config.walMaintenance.archiveSizeAlertBytes }
      : {}),
  };
}

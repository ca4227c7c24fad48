// Where a backup comes from (issue 17): for a cluster with standbys, the replication state read
// from both ends and judged by chooseBackupSource under the cluster's backupFrom; a dump from a
// standby runs with WAL replay paused (no recovery conflict can cancel it) and always resumes it.
// A cluster without standbys reads nothing here and its backups come from the primary as before.
import { log } from '@temporalio/activity';
import type pg from 'pg';
import type { Config } from '../config/index.js';
import { ErrorType, nonRetryable } from '../lib/errors.js';
import { formatBytes } from '../lib/diskSpace.js';
import type { BackupSourceRecord } from '../lib/manifest.js';
import { chooseBackupSource, replicationSettings } from '../lib/replication.js';
import { clusterRef, withConnection, type ClusterRef } from '../postgres/connection.js';
import { standbyRef } from '../postgres/replication.js';
import { collectReplication } from './health/replication.js';

export type { BackupSourceRecord };

/**
 * The source of this run's backup, or undefined for a cluster without standbys. backupFrom
 * "standby" with no standby fit to serve fails non-retryably, naming why for each standby.
 */
export async function pickBackupSource(
  config: Config,
  env: NodeJS.ProcessEnv,
  cluster: string,
): Promise<BackupSourceRecord | undefined> {
  const ref = clusterRef(config, cluster);
  const status = await collectReplication(config, env, cluster);
  if (!status) return undefined;
  const settings = replicationSettings(ref.config);
  const choice = chooseBackupSource(status.standbys, settings.backupFrom);
  if (choice.role === 'none')
    throw nonRetryable(
      ErrorType.StandbyUnavailable,
      `cluster "${cluster}" backs up from a standby only (backupFrom "standby") and ${choice.reason}`,
    );
  if (choice.role === 'primary') {
    return {
      role: 'primary',
      host: ref.config.host,
      port: ref.config.port,
      reason: choice.reason,
    };
  }
  const standby = status.standbys.find((s) => s.name === choice.standby)!;
  return {
    role: 'standby',
    name: standby.name,
    host: standby.host,
    port: standby.port,
    lagBytes: choice.lagBytes,
    reason: `standby "${standby.name}" replays ${formatBytes(choice.lagBytes)} behind the primary (limit ${formatBytes(settings.lagLimitBytes)})`,
  };
}

/** Where to connect for the backup: the chosen standby, or the primary. */
export function sourceRef(config: Config, cluster: string, source: BackupSourceRecord | undefined): ClusterRef {
  const ref = clusterRef(config, cluster);
  if (source?.role !== 'standby') return ref;
  const standby = ref.config.standbys?.find((s) => s.name === source.name);
  if (!standby)
    throw nonRetryable(
      ErrorType.StandbyUnavailable,
      `standby "${source.name}" of cluster "${cluster}" is no longer in the config`,
    );
  return standbyRef(ref, standby);
}

/** In words, for progress and results: `standby "s1" (127.0.0.1:5433), 0 B behind` or `the primary`. */
export function describeSource(source: BackupSourceRecord | undefined): string | undefined {
  if (!source) return undefined;
  return source.role === 'standby'
    ? `standby "${source.name}" (${source.host}:${source.port}), ${formatBytes(source.lagBytes ?? 0)} behind`
    : `the primary (${source.reason})`;
}

/** Pauses replay and waits until it is paused (PostgreSQL 14+ says when; 13 pauses at once). */
export async function pauseReplay(client: pg.Client, versionNum: number): Promise<void> {
  await client.query('SELECT pg_wal_replay_pause()');
  if (versionNum < 140000) return;
  for (let i = 0; i < 300; i++) {
    const { rows } = await client.query<{ s: string }>('SELECT pg_get_wal_replay_pause_state() AS s');
    if (rows[0]!.s === 'paused') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('WAL replay did not pause within 30 s');
}

/** Resumes replay if the server is (still) a standby; a no-op when it is not paused. */
export async function resumeReplay(client: pg.Client): Promise<boolean> {
  const { rows } = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
  if (!rows[0]!.r) return false;
  await client.query('SELECT pg_wal_replay_resume()');
  return true;
}

/** The dump's own resume; a failure is logged (the workflow's resumeStandbyReplay runs next). */
export async function resumeAfterDump(ref: ClusterRef, env: NodeJS.ProcessEnv): Promise<void> {
  await withConnection(ref, ref.config.maintenanceDatabase, env, resumeReplay).catch((err: Error) =>
    log.warn(`could not resume WAL replay on ${ref.name}: ${err.message}`),
  );
}

/** resumeStandbyReplay: the workflow's backstop after a dump from a standby. */
export function createBackupSourceActivities({ config, env }: { config: Config; env: NodeJS.ProcessEnv }) {
  /**
   * The backstop of a dump from a standby, run by the workflow after it whatever happened (a
   * non-cancellable finally): replay runs again even when the dump's worker was killed for good.
   */
  async function resumeStandbyReplay(input: { cluster: string; standby: string }): Promise<{ resumed: boolean }> {
    const ref = sourceRef(config, input.cluster, { role: 'standby', name: input.standby, host: '', port: 0 });
    const resumed = await withConnection(ref, ref.config.maintenanceDatabase, env, resumeReplay);
    return { resumed };
  }
  return { resumeStandbyReplay };
}

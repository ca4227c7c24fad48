// Replication state read from both ends: the primary's WAL senders (pg_stat_replication) and what
// each standby says of its own receiving and replay. src/lib/replication.ts interprets it.
import type pg from 'pg';
import type { StandbyConfig } from '../config/replication.js';
import type { PrimaryReplication, SenderRow, StandbyReading, StandbySelf } from '../lib/replication.js';
import { serverInfo, withConnection, type ClusterRef } from './connection.js';

/**
 * A standby as a connection target: its host and port, its own user and password source when it
 * names one, else the cluster's (a physical standby has the primary's roles and passwords).
 */
export function standbyRef(cluster: ClusterRef, standby: StandbyConfig): ClusterRef {
  const c = cluster.config;
  const ownSecret = standby.passwordEnv !== undefined || standby.passfile !== undefined;
  return {
    name: `${cluster.name}/${standby.name}`,
    config: {
      ...c,
      host: standby.host,
      port: standby.port,
      user: standby.user ?? c.user,
      passwordEnv: ownSecret ? standby.passwordEnv : c.passwordEnv,
      passfile: ownSecret ? standby.passfile : c.passfile,
      dataDirectory: standby.dataDirectory,
      hostQueue: standby.hostQueue,
    },
  };
}

/** The primary's current WAL position and every WAL sender (PostgreSQL 10+). */
export async function readPrimaryReplication(client: pg.Client): Promise<PrimaryReplication> {
  const { rows } = await client.query<{
    current: string;
    application_name: string;
    client_addr: string | null;
    state: string | null;
    sent_lsn: string | null;
    write_lsn: string | null;
    flush_lsn: string | null;
    replay_lsn: string | null;
    lag_bytes: string | null;
    lag_seconds: number | null;
  }>(`
    SELECT pg_current_wal_lsn()::text AS current, r.application_name, host(r.client_addr) AS client_addr, r.state,
           r.sent_lsn::text, r.write_lsn::text, r.flush_lsn::text, r.replay_lsn::text,
           pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint::text AS lag_bytes,
           extract(epoch FROM r.replay_lag)::float8 AS lag_seconds
      FROM (SELECT 1) one LEFT JOIN pg_stat_replication r ON true
     ORDER BY r.application_name`);
  const senders: SenderRow[] = rows
    .filter((r) => r.state !== null)
    .map((r) => ({
      applicationName: r.application_name,
      clientAddr: r.client_addr,
      state: r.state!,
      sentLsn: r.sent_lsn,
      writeLsn: r.write_lsn,
      flushLsn: r.flush_lsn,
      replayLsn: r.replay_lsn,
      replayLagBytes: r.lag_bytes === null ? null : Number(r.lag_bytes),
      replayLagSeconds: r.lag_seconds,
    }));
  return { currentLsn: rows[0]!.current, senders };
}

/** What a standby says of itself; on a server not in recovery only that (the replay functions return null). */
export async function readStandbySelf(client: pg.Client): Promise<StandbySelf> {
  const { versionNum } = await serverInfo(client);
  const pauseState =
    versionNum >= 140000
      ? ', CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END AS pause_state'
      : '';
  const { rows } = await client.query<{
    in_recovery: boolean;
    receive_lsn: string | null;
    replay_lsn: string | null;
    last_replay: Date | null;
    since_replay: number | null;
    paused: boolean;
    pause_state?: string;
    receiver: string | null;
  }>(`
    SELECT pg_is_in_recovery() AS in_recovery, pg_last_wal_receive_lsn()::text AS receive_lsn,
           pg_last_wal_replay_lsn()::text AS replay_lsn, pg_last_xact_replay_timestamp() AS last_replay,
           extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS since_replay,
           CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END AS paused${pauseState},
           (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS receiver`);
  const r = rows[0]!;
  return {
    inRecovery: r.in_recovery,
    receiveLsn: r.receive_lsn,
    replayLsn: r.replay_lsn,
    lastReplayAt: r.last_replay ? r.last_replay.toISOString() : null,
    secondsSinceReplay: r.since_replay,
    replayPaused: r.paused,
    ...(r.pause_state ? { pauseState: r.pause_state } : {}),
    receiverStatus: r.receiver,
  };
}

/** Each configured standby read over its own connection; one that cannot be read says why. */
export async function readStandbys(
  cluster: ClusterRef,
  standbys: readonly StandbyConfig[],
  env: NodeJS.ProcessEnv,
): Promise<StandbyReading[]> {
  return Promise.all(
    standbys.map(async (s): Promise<StandbyReading> => {
      const ref = standbyRef(cluster, s);
      const base = { name: s.name, host: s.host, port: s.port };
      try {
        return { ...base, self: await withConnection(ref, ref.config.maintenanceDatabase, env, readStandbySelf) };
      } catch (err) {
        return { ...base, error: (err as Error).message };
      }
    }),
  );
}

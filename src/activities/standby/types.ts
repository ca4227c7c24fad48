// What createStandby's activities hand the workflow and each other.

export interface StandbyPlan {
  cluster: string;
  /** The standby's name in clusters.<cluster>.standbys (also its application_name on the primary). */
  standby: string;
  backupId: string;
  /** The standby's data directory on its host. */
  dataDirectory: string;
  /** Beside it: `data/` (the staged base backup), the swap's markers. */
  workDirectory: string;
  /** Where a data directory that was not empty is moved to, and kept. */
  asideDirectory: string;
  /** The standby's port. */
  port: number;
  /** The task queue of the worker on the standby's host. */
  hostQueue: string;
}

/** One look at replication, from both ends. */
export interface StandbyStreaming {
  streaming: boolean;
  /** What the standby is doing, for the progress query ("replaying from the archive at 0/5000060"). */
  detail: string;
  /** The standby's WAL receiver status (pg_stat_wal_receiver), when it has one. */
  receiverStatus?: string;
  replayLsn?: string;
  /** The primary's state for this standby in pg_stat_replication. */
  senderState?: string;
  lagBytes?: number;
}

// What the PITR activities hand the workflow and each other: the plan, a wait for archiving, the outcome.
import type { RecoveryTarget } from '../../lib/recovery.js';

export type RecoveryMode = 'in-place' | 'rehearsal';

export interface RecoveryPlan {
  cluster: string;
  mode: RecoveryMode;
  target: RecoveryTarget;
  targetDescription: string;
  backupId: string;
  backupStopLsn: string;
  targetTimeline: number;
  walFiles: string[];
  /** The live data directory. */
  dataDirectory: string;
  /** Working directory beside it: `data/` (the new data directory), `wal/`, recovery.log. */
  workDirectory: string;
  /** Where the live data directory is moved to (in-place) and kept. */
  asideDirectory: string;
  /** The task queue of the worker on the database host. */
  hostQueue: string;
  /** Set while plan waits for the archive to reach the target (the workflow asks again). */
  pending?: ArchiveWait;
}

/** A wait for archiving: since when, for which segment (the one pgwarden's WAL switch finished), and why. */
export interface ArchiveWait {
  since: string;
  segment?: string;
  detail: string;
}

export interface RecoveryOutcome {
  /** Timeline the server runs on after promotion. */
  timeline: number;
  /** WAL position where replay ended. */
  reachedLsn: string;
  /** What PostgreSQL logged about where it stopped (e.g. "recovery stopping before commit of transaction 812, time ..."). */
  stoppedAt?: string;
  port: number;
  recoverSeconds: number;
}

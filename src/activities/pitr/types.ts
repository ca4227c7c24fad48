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
  /** Where this start's replay began ("redo starts at"): after a replay before the approval, its restartpoint. */
  redoStart?: string;
  port: number;
  recoverSeconds: number;
}

/** What the replay before the approval (in place) did, and what it leaves for after the approval. */
export interface PreReplayOutcome {
  /** Replay to `latest` ran as a standby (standby.signal) up to the end of the staged WAL. */
  standby: boolean;
  /** Where replay began (the base backup's start) and where it got to. */
  redoStart: string;
  reachedLsn: string;
  /** Where the start after the approval begins (the last restartpoint's redo location). */
  restartLsn: string;
  /** What PostgreSQL logged about where it stopped (targets other than latest). */
  stoppedAt?: string;
  replayedBytes: number;
  /** Bytes the start after the approval replays again (from the restartpoint to where this replay got). */
  remainingBytes: number;
  seconds: number;
  /** Replay rate measured, bytes per second. */
  bytesPerSecond: number;
  /** Measured: the server's start until it accepted connections, and its shutdown. */
  startSeconds: number;
  stopSeconds: number;
  /** `latest`: the bound of the wait for the archive before the stop (clusters.<name>.archiveWaitSeconds). */
  archiveWaitSeconds?: number;
}

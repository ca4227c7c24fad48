// Builds the activity object the worker registers, from injected dependencies (config, env).
import type { Config } from '../config/index.js';
import { createLogicalBackupActivities } from './logicalBackup.js';
import { createVerifyActivities } from './verify/verify.js';
import { createRestoreActivities } from './restore.js';
import { createRetentionActivities } from './retention.js';
import { createBaseBackupActivities } from './baseBackup.js';
import { createClusterActivities } from './pitr/index.js';
import { createWalMaintenanceActivities } from './walMaintenance.js';
import { createOffsiteActivities } from './offsite/sync.js';
import { createOffsiteFetchActivities } from './offsite/fetch.js';
import { createHealthActivities } from './health/health.js';
import { createRepositoryInfoActivities } from './repositoryInfo.js';
import { createVisibilityActivities } from './visibility.js';
import { createStandbyActivities } from './standby/index.js';

export interface ActivityDeps {
  config: Config;
  /** Where secrets are resolved from (password and passphrase env vars); process.env in production. */
  env: NodeJS.ProcessEnv;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createLogicalBackupActivities(deps),
    ...createVerifyActivities(deps),
    ...createRestoreActivities(deps),
    ...createRetentionActivities(deps),
    ...createBaseBackupActivities(deps),
    ...createClusterActivities(deps),
    ...createWalMaintenanceActivities(deps),
    ...createOffsiteActivities(deps),
    ...createOffsiteFetchActivities(deps),
    ...createHealthActivities(deps),
    ...createRepositoryInfoActivities(deps),
    ...createStandbyActivities(deps),
    ...createVisibilityActivities(),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { VerifyPlan, VerifyTarget, RestoreResult, CompareResult } from './verify/verify.js';
export type { LogicalBackupInput, LogicalBackupResult, PreflightResult, BackupProgress } from './logicalBackup.js';
export type { BaseBackupInput, BaseBackupResult, BasePreflight } from './baseBackup.js';
export type { PreReplayOutcome, RecoveryPlan, RecoveryOutcome, RecoveryMode } from './pitr/index.js';
export type { StandbyPlan, StandbyStreaming } from './standby/index.js';
export type { ArchiverHealth, WalRetentionResult, WalArchiveSize } from './walMaintenance.js';
export type { SyncResult, RetentionResult, CheckDepth } from './offsite/sync.js';
export type { OffsiteTarget } from './offsite/remoteView.js';
export type { CheckReport, CheckProblem } from '../lib/offsite.js';
export type { FetchedFromOffsite } from './offsite/fetch.js';
export type { HealthReport, HealthNotification } from './health/health.js';
export type { Delivery } from './health/notify.js';

// Failure type names, without @temporalio/common: wal-push reports them without loading Temporal.
export const ErrorType = {
  InvalidInput: 'InvalidInput',
  UnknownCluster: 'UnknownCluster',
  UnknownDatabase: 'UnknownDatabase',
  ServerUnreachable: 'ServerUnreachable',
  AuthenticationFailed: 'AuthenticationFailed',
  KeyUnreadable: 'KeyUnreadable',
  InsufficientDiskSpace: 'InsufficientDiskSpace',
  RepositoryUnavailable: 'RepositoryUnavailable',
  DumpFailed: 'DumpFailed',
  /** A "*" fullBackup in which one or more databases failed (each is named; the others were backed up). */
  BackupFailed: 'BackupFailed',
  SanityCheckFailed: 'SanityCheckFailed',
  IntegrityError: 'IntegrityError',
  DecryptionFailed: 'DecryptionFailed',
  RestoreFailed: 'RestoreFailed',
  VerificationFailed: 'VerificationFailed',
  /** A restore needs roles the target cluster lacks (or that pgwarden's user cannot act as). */
  MissingRoles: 'MissingRoles',
  /** The target cluster cannot create a database with the backup's encoding, collation, ctype or locale provider. */
  LocaleUnavailable: 'LocaleUnavailable',
  NoBackup: 'NoBackup',
  ArchivingOff: 'ArchivingOff',
  /** backupFrom "standby" and no standby can serve the backup (each one's reason is named). */
  StandbyUnavailable: 'StandbyUnavailable',
  WalConflict: 'WalConflict',
  /** WAL a backup needs did not reach the archive in time (pg_stat_archiver's state is named). */
  WalNotArchived: 'WalNotArchived',
  BadTarget: 'BadTarget',
  /** An approved step whose second look found what the approver was not told of: nothing done. */
  ApprovalStale: 'ApprovalStale',
  WalGap: 'WalGap',
  RecoveryFailed: 'RecoveryFailed',
  ClusterControlFailed: 'ClusterControlFailed',
  OffsiteUnavailable: 'OffsiteUnavailable',
  OffsiteMisconfigured: 'OffsiteMisconfigured',
  OffsiteCheckFailed: 'OffsiteCheckFailed',
  NotificationFailed: 'NotificationFailed',
} as const;
export type ErrorType = (typeof ErrorType)[keyof typeof ErrorType];

// Failure types: the `type` of an ApplicationFailure. Operators and tests match on these names.
import { ApplicationFailure } from '@temporalio/common';

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
  SanityCheckFailed: 'SanityCheckFailed',
  IntegrityError: 'IntegrityError',
  DecryptionFailed: 'DecryptionFailed',
  RestoreFailed: 'RestoreFailed',
  VerificationFailed: 'VerificationFailed',
  NoBackup: 'NoBackup',
  ArchivingOff: 'ArchivingOff',
  WalConflict: 'WalConflict',
  BadTarget: 'BadTarget',
  WalGap: 'WalGap',
  RecoveryFailed: 'RecoveryFailed',
  ClusterControlFailed: 'ClusterControlFailed',
  OffsiteUnavailable: 'OffsiteUnavailable',
  OffsiteMisconfigured: 'OffsiteMisconfigured',
  OffsiteCheckFailed: 'OffsiteCheckFailed',
} as const;
export type ErrorType = (typeof ErrorType)[keyof typeof ErrorType];

/** A failure that retrying cannot fix: the workflow ends with it and the message names the problem. */
export function nonRetryable(type: ErrorType, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

/** A failure worth retrying (transient), typed so it shows clearly in the UI. */
export function retryable(type: ErrorType, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: false });
}

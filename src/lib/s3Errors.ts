// What an S3 answer means, as a pure function: the real cause of a failure (refused credentials, a
// missing bucket or object, an object in an archive storage class, throttling, the network), and
// whether an object can be read now or must be restored from GLACIER / DEEP_ARCHIVE first.
// The S3 driver turns a cause into a retryable or non-retryable failure with its own message.

/** Why an S3 request failed. */
export type S3FailureCause =
  | 'no-credentials'
  | 'credentials'
  | 'no-bucket'
  | 'not-found'
  /** GetObject of an object in an archive class (GLACIER, DEEP_ARCHIVE, an archive tier) that is not restored. */
  | 'archived'
  /** RestoreObject of an object whose restore is already under way. */
  | 'restore-in-progress'
  | 'throttled'
  | 'network'
  | 'server'
  | 'other';

/** The parts of an SDK error that say what happened. */
export interface S3ErrorLike {
  name?: string;
  code?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
]);
const CREDENTIAL_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'InvalidToken',
  'ExpiredToken',
  'XAdminUserNotFound',
  'InvalidSecurity',
]);
const THROTTLE_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequests',
  'TooManyRequestsException',
  'RequestThrottled',
  'ProvisionedThroughputExceededException',
]);

/**
 * The cause of a failed request. `probe` is the bucket check: a HEAD error has no body, so a 404
 * there means the bucket (versitygw even answers 404 for an unknown access key, told apart by its code).
 */
export function classifyS3Error(err: S3ErrorLike, operation?: 'probe' | string): S3FailureCause {
  const status = err.$metadata?.httpStatusCode;
  const code = err.Code ?? err.name ?? '';
  if (code === 'CredentialsProviderError') return 'no-credentials';
  // Before the 403 rule: InvalidObjectState is a 403 that has nothing to do with credentials.
  if (code === 'InvalidObjectState') return 'archived';
  if (code === 'RestoreAlreadyInProgress') return 'restore-in-progress';
  if (code === 'NoSuchBucket' || (operation === 'probe' && status === 404 && code !== 'XAdminUserNotFound'))
    return 'no-bucket';
  if (CREDENTIAL_CODES.has(code) || status === 403) return 'credentials';
  if (code === 'NoSuchKey' || code === 'NotFound' || status === 404) return 'not-found';
  if (THROTTLE_CODES.has(code) || status === 429 || (status === 503 && code === 'SlowDown')) return 'throttled';
  if ((err.code && NETWORK_CODES.has(err.code)) || NETWORK_CODES.has(code) || code === 'TimeoutError') return 'network';
  if (status !== undefined && status >= 500) return 'server';
  return 'other';
}

/** Storage classes whose objects must be restored (RestoreObject) before GetObject answers. */
export const ARCHIVE_STORAGE_CLASSES: ReadonlySet<string> = new Set(['GLACIER', 'DEEP_ARCHIVE']);

export function isArchiveStorageClass(storageClass: string | undefined): boolean {
  return storageClass !== undefined && ARCHIVE_STORAGE_CLASSES.has(storageClass);
}

/**
 * INTELLIGENT_TIERING's opt-in archive tiers (HeadObject's ArchiveStatus): the listing says only
 * INTELLIGENT_TIERING, yet GetObject refuses such an object until it is restored.
 */
export const ARCHIVE_TIERS: ReadonlySet<string> = new Set(['ARCHIVE_ACCESS', 'DEEP_ARCHIVE_ACCESS']);

/** Whether GetObject refuses an object until restored: an archive storage class, or an archive tier. */
export function isArchived(o: { storageClass?: string; archiveStatus?: string }): boolean {
  return isArchiveStorageClass(o.storageClass) || (o.archiveStatus !== undefined && ARCHIVE_TIERS.has(o.archiveStatus));
}

/** Whether an object can be read now, from its HEAD answer. */
export type ObjectReadability = 'readable' | 'archived' | 'restoring';

/**
 * From HeadObject's StorageClass, Restore (`ongoing-request="true"` / `ongoing-request="false",
 * expiry-date="..."`) and ArchiveStatus (INTELLIGENT_TIERING's archive tiers): readable, archived
 * (a restore must be requested), or restoring (requested, not done yet).
 */
export function objectReadability(head: {
  StorageClass?: string;
  Restore?: string;
  ArchiveStatus?: string;
}): ObjectReadability {
  if (!isArchived({ storageClass: head.StorageClass, archiveStatus: head.ArchiveStatus })) return 'readable';
  if (!head.Restore) return 'archived';
  return /ongoing-request\s*=\s*"true"/.test(head.Restore) ? 'restoring' : 'readable';
}

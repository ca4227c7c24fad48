// The S3 client of an S3 repository (s3.ts): its settings, its credentials from the environment variables the config
// names (or the SDK's default chain), and what the SDK's errors mean for pgwarden, by their real cause
// (lib/s3Errors.ts): network trouble and throttling are retried, a refusal is not.
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import type { S3RepositoryConfig } from '../config/repositories.js';
import { ErrorType, nonRetryable, retryable } from '../lib/errors.js';
import { classifyS3Error } from '../lib/s3Errors.js';

/** An S3 repository's bucket and key prefix, its clients, and the mapping of their errors. */
export interface S3Connection {
  Bucket: string;
  /** The config's prefix, ending in '/' unless empty: every key is under it. */
  prefix: string;
  /** The repository as messages name it. */
  label: string;
  client: S3Client;
  /** The same client without the SDK's retries: s3Upload.ts resends a failed part itself. */
  uploadClient: S3Client;
  failure(e: unknown, what: string): ApplicationFailure;
  /** Runs `fn`, its errors mapped by `failure`. */
  attempt<T>(what: string, fn: () => Promise<T>): Promise<T>;
}

export function connectS3(name: string, config: S3RepositoryConfig, env: NodeJS.ProcessEnv): S3Connection {
  const prefix = config.prefix === '' || config.prefix.endsWith('/') ? config.prefix : `${config.prefix}/`;
  const Bucket = config.bucket;
  const label = `offsite repository "${name}" (s3://${Bucket}/${prefix})`;
  const endpoint = config.endpoint ?? `s3.${config.region}.amazonaws.com`;

  const clientConfig: S3ClientConfig = {
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: config.forcePathStyle,
    credentials: credentials(),
    // Temporal retries the activity; the SDK's own retries only smooth over a blip.
    maxAttempts: 3,
    // We check content against our own sha256 (contentSha256, the caller of get); an SDK checksum
    // error on read would turn a corrupt object into an endless transient failure instead.
    responseChecksumValidation: 'WHEN_REQUIRED',
    // A silent endpoint fails the attempt rather than hanging until the heartbeat timeout.
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
  };
  const client = new S3Client(clientConfig);
  // Uploads resend a failed request themselves, with a fresh read of the file (s3Upload.ts).
  const uploadClient = new S3Client({ ...clientConfig, maxAttempts: 1 });

  function credentials(): S3ClientConfig['credentials'] {
    if (!config.accessKeyIdEnv && !config.secretAccessKeyEnv) return undefined; // the SDK's default chain
    const read = (variable: string | undefined, what: string): string => {
      const value = variable ? env[variable] : undefined;
      if (!value) {
        throw nonRetryable(
          ErrorType.OffsiteMisconfigured,
          `${label}: ${variable ? `environment variable ${variable} (${what}) is not set` : `${what} has no environment variable configured`}`,
        );
      }
      return value;
    };
    return {
      accessKeyId: read(config.accessKeyIdEnv, 'access key id'),
      secretAccessKey: read(config.secretAccessKeyEnv, 'secret access key'),
    };
  }

  /** One mapping for every operation, by the real cause (lib/s3Errors.ts): network trouble and throttling are retried, a refusal is not. */
  function failure(e: unknown, what: string): ApplicationFailure {
    if (e instanceof ApplicationFailure) return e;
    const err = e as {
      name?: string;
      code?: string;
      Code?: string;
      message?: string;
      $metadata?: { httpStatusCode?: number };
    };
    const status = err.$metadata?.httpStatusCode;
    const code = err.Code ?? err.name ?? '';
    switch (classifyS3Error(err, what)) {
      case 'no-credentials':
        return nonRetryable(
          ErrorType.OffsiteMisconfigured,
          `${label}: no credentials found (configure accessKeyIdEnv/secretAccessKeyEnv or the AWS default chain)`,
        );
      case 'no-bucket':
        return nonRetryable(ErrorType.OffsiteMisconfigured, `${label}: bucket "${Bucket}" does not exist`);
      case 'credentials':
        return nonRetryable(
          ErrorType.OffsiteMisconfigured,
          `${label}: credentials refused by ${endpoint} (${code || status})`,
        );
      case 'archived':
        return nonRetryable(
          ErrorType.OffsiteUnavailable,
          `${label}: ${what}: the object is in an archive storage class (GLACIER, DEEP_ARCHIVE) or an Intelligent-Tiering archive tier and must be restored first (${code})`,
        );
      case 'not-found':
        return nonRetryable(ErrorType.OffsiteUnavailable, `${label}: ${what}: no such object (${code || status})`);
      case 'throttled':
        return retryable(
          ErrorType.OffsiteUnavailable,
          `${label}: ${endpoint} is throttling requests (${what}: ${code || `HTTP ${status}`})`,
        );
      case 'network':
        return retryable(
          ErrorType.OffsiteUnavailable,
          `${label}: cannot reach ${endpoint} (${what}: ${err.message ?? code})`,
        );
      case 'server':
        return retryable(
          ErrorType.OffsiteUnavailable,
          `${label}: ${endpoint} is unavailable (${what}: HTTP ${status} ${code})`,
        );
      default:
        // Anything else (an interrupted body, an unexpected answer): worth another attempt.
        return retryable(
          ErrorType.OffsiteUnavailable,
          `${label}: ${what} failed: ${code}${status ? ` (HTTP ${status})` : ''}: ${err.message ?? String(e)}`,
        );
    }
  }

  async function attempt<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw failure(e, what);
    }
  }

  return { Bucket, prefix, label, client, uploadClient, failure, attempt };
}

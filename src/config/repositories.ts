// Where backups are kept: the local repository, and the offsite ones (S3, rsync over ssh). Secrets
// are never here: the config names the environment variables that hold them.
import { z } from 'zod';
import { envName, urlWithoutCredentials } from './fields.js';
import { offsiteRetentionSchema } from './retention.js';

export const localRepositorySchema = z.object({ type: z.literal('local'), path: z.string().min(1) }).strict();

const storageClass = z.string().regex(/^[A-Z_]+$/, 'an S3 storage class such as STANDARD or GLACIER_IR');

/** An offsite S3 (or S3-compatible) bucket. Credentials: the named environment variables, else the AWS default chain. */
export const s3RepositorySchema = z
  .object({
    type: z.literal('s3'),
    bucket: z.string().min(3),
    /** Key prefix inside the bucket; the repository layout follows it. */
    prefix: z.string().default(''),
    region: z.string().default('us-east-1'),
    /** For S3-compatible stores (versitygw, Ceph RGW, ...). */
    endpoint: urlWithoutCredentials('accessKeyIdEnv and secretAccessKeyEnv').optional(),
    forcePathStyle: z.boolean().default(false),
    /** Storage class per backup kind; the bucket's default when unset. */
    storageClass: z
      .object({ logical: storageClass.optional(), base: storageClass.optional(), wal: storageClass.optional() })
      .strict()
      .default({}),
    accessKeyIdEnv: envName.optional(),
    secretAccessKeyEnv: envName.optional(),
    /** Remote retention: tiers like the local policy (default: 30 daily, 13 weekly, 12 monthly); WAL the kept base backups need is kept. */
    retention: z.lazy(() => offsiteRetentionSchema).optional(),
    /** Older configs: a flat age in days instead of `retention`. */
    retentionDays: z.number().int().positive().optional(),
    /** Multipart part size (grown for objects over 9,000 parts); memory per upload is a few times this. */
    partSizeMiB: z.number().int().min(5).max(512).default(8),
    /** Cap the upload rate (bytes per second), to spare a shared uplink. */
    maxRate: z.number().int().positive().optional(),
    /** Restores from an archive class (GLACIER, DEEP_ARCHIVE): the retrieval tier, days the copy stays readable, and how long a restore waits for S3. */
    restoreTier: z.enum(['Expedited', 'Standard', 'Bulk']).default('Standard'),
    restoreDays: z.number().int().min(1).max(30).default(3),
    restoreWaitHours: z.number().positive().max(23).default(20),
  })
  .strict();

/** An offsite directory on another host, reached by rsync over ssh. */
export const rsyncRepositorySchema = z
  .object({
    type: z.literal('rsync'),
    /** `user@host:/absolute/path` */
    destination: z.string().regex(/^[A-Za-z0-9_.-]+@[A-Za-z0-9_.:[\]-]+:\/.+$/, 'user@host:/absolute/path'),
    port: z.number().int().min(1).max(65535).default(22),
    identityFile: z.string().optional(),
    /** Host keys to trust (StrictHostKeyChecking=yes always: an unknown key is refused). */
    knownHostsFile: z.string().optional(),
    retention: z.lazy(() => offsiteRetentionSchema).optional(),
    retentionDays: z.number().int().positive().optional(),
    /** Cap the upload rate (bytes per second; rsync --bwlimit). */
    maxRate: z.number().int().positive().optional(),
  })
  .strict();

export const repositorySchema = z.discriminatedUnion('type', [
  localRepositorySchema,
  s3RepositorySchema,
  rsyncRepositorySchema,
]);
export type RepositoryConfig = z.infer<typeof repositorySchema>;
export type LocalRepositoryConfig = z.infer<typeof localRepositorySchema>;
export type S3RepositoryConfig = z.infer<typeof s3RepositorySchema>;
export type RsyncRepositoryConfig = z.infer<typeof rsyncRepositorySchema>;
export type OffsiteRepositoryConfig = S3RepositoryConfig | RsyncRepositoryConfig;

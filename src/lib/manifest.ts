// manifest.json: the commit marker of a backup (written last) and its description.
import { z } from 'zod';
import { privilegesSchema } from './privileges.js';

export const MANIFEST_FORMAT = 1;

const artifactSchema = z.object({
  /** File name inside the backup directory. */
  name: z.string(),
  role: z.enum(['dump', 'globals', 'base', 'backup_manifest']),
  /** Bytes stored on disk (after compression and encryption). */
  bytes: z.number().int().nonnegative(),
  /** sha256 of the stored bytes, hex. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Bytes produced by the PostgreSQL tool, before compression and encryption, when measured. */
  rawBytes: z.number().int().nonnegative().optional(),
});
export type Artifact = z.infer<typeof artifactSchema>;

const tableSchema = z.object({ schema: z.string(), name: z.string(), rows: z.number().int().nonnegative() });
export type TableCount = z.infer<typeof tableSchema>;

const verificationSchema = z.object({
  at: z.string(),
  ok: z.boolean(),
  method: z.string(),
  restoreSeconds: z.number().optional(),
  detail: z.string().optional(),
});
export type Verification = z.infer<typeof verificationSchema>;

/**
 * Where the backup was taken (issue 17): recorded for clusters with standbys; absent in other
 * clusters' backups and in backups made before pgwarden chose a source (those came from the primary).
 */
export const backupSourceSchema = z.object({
  role: z.enum(['primary', 'standby']),
  /** The standby's name in the config (role standby). */
  name: z.string().optional(),
  host: z.string(),
  port: z.number().int(),
  /** The standby's replay lag behind the primary when the backup started, in bytes. */
  lagBytes: z.number().int().nonnegative().optional(),
  /** Why this source: the standby's lag, or why no standby could serve. */
  reason: z.string().optional(),
});
export type BackupSourceRecord = z.infer<typeof backupSourceSchema>;

/** What every backup's manifest records, whatever its kind. */
const commonFields = {
  format: z.literal(MANIFEST_FORMAT),
  cluster: z.string(),
  backupId: z.string(),
  serverVersion: z.string(),
  serverVersionNum: z.number().int(),
  startedAt: z.string(),
  finishedAt: z.string(),
  /** Total stored bytes of all artifacts. */
  bytes: z.number().int().nonnegative(),
  /** sha256 of the stored main artifact (the dump, the base tar). */
  sha256: z.string(),
  artifacts: z.array(artifactSchema),
  compression: z.object({ algorithm: z.enum(['zstd', 'none']), level: z.number().int().optional() }),
  encryption: z.object({ format: z.literal('openpgp'), recipients: z.array(z.string()) }).nullable(),
  verifications: z.array(verificationSchema),
  pgwardenVersion: z.string(),
  source: backupSourceSchema.optional(),
};

export const logicalManifestSchema = z.object({
  ...commonFields,
  kind: z.literal('logical'),
  database: z.string(),
  dumpFormat: z.literal('custom'),
  /** Entries pg_restore --list read from the dump's table of contents (the sanity check). */
  tocEntries: z.number().int().nonnegative(),
  globals: z.object({ rolePasswords: z.boolean() }),
  tables: z.array(tableSchema),
  /**
   * Owners, privileges and database properties, read in the dump's snapshot; verification compares
   * the restored database with them. Absent in backups made before pgwarden recorded them.
   */
  privileges: privilegesSchema.optional(),
  /** Taken by a `"*"` backup run (all its databases share the backupId): what verifyBackup `"*"` verifies. */
  allDatabases: z.boolean().optional(),
});
export type LogicalManifest = z.infer<typeof logicalManifestSchema>;

export function parseLogicalManifest(json: string): LogicalManifest {
  return logicalManifestSchema.parse(JSON.parse(json));
}

export function totalRows(tables: readonly TableCount[]): number {
  return tables.reduce((sum, t) => sum + t.rows, 0);
}

export const baseManifestSchema = z.object({
  ...commonFields,
  kind: z.literal('base'),
  /** System identifier of the cluster: WAL of another cluster never belongs to this backup. */
  systemIdentifier: z.string(),
  /** From pg_basebackup's backup_manifest ("WAL-Ranges"): replay from startLsn to at least stopLsn. */
  timeline: z.number().int().positive(),
  startLsn: z.string(),
  stopLsn: z.string(),
});
export type BaseManifest = z.infer<typeof baseManifestSchema>;

export function parseBaseManifest(json: string): BaseManifest {
  return baseManifestSchema.parse(JSON.parse(json));
}

// A cluster's standbys, where its backups come from, and the replication thresholds (issue 17).
// All optional: a cluster without them parses exactly as before; src/lib/replication.ts fills the
// defaults where they are used.
import { z } from 'zod';
import { name, passfileField, passwordEnvField, portField, userField } from './fields.js';

/**
 * A streaming standby of the cluster. pgwarden connects to it to read its replay state; user and
 * password default to the cluster's (a physical standby has the primary's roles).
 */
export const standbySchema = z
  .object({
    /** How pgwarden names it; also the `application_name` its primary_conninfo should set (pg_stat_replication). */
    name,
    host: z.string().min(1),
    port: portField,
    user: userField.optional(),
    passwordEnv: passwordEnvField.optional(),
    passfile: passfileField.optional(),
    /** Its data directory on its host (for the backups and createStandby to come). */
    dataDirectory: z.string().optional(),
    /** Task queue of the worker on its host; default `pgwarden@<host>`. */
    hostQueue: z.string().optional(),
  })
  .strict()
  .refine((s) => !(s.passwordEnv && s.passfile), 'set passwordEnv or passfile, not both');
export type StandbyConfig = z.infer<typeof standbySchema>;

export const standbysSchema = z
  .array(standbySchema)
  .min(1)
  .refine((list) => new Set(list.map((s) => s.name)).size === list.length, 'standby names must be unique');

/** Where backups come from (the next step of issue 17 reads it; today every backup comes from the primary). */
export const backupFromSchema = z.enum(['primary', 'standby', 'prefer-standby']);

export const replicationSchema = z
  .object({
    /** A standby is a backup source only while it replays within this many bytes of the primary (1 MiB). */
    lagLimitBytes: z.number().int().nonnegative().optional(),
    /** healthCheck alerts when a standby's replay is this many bytes behind (16 MiB). */
    alertLagBytes: z.number().int().positive().optional(),
    /** healthCheck alerts when a standby's replay is this many seconds behind (300). */
    alertLagSeconds: z.number().positive().optional(),
  })
  .strict();

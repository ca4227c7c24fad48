// The pgwarden config file (pgwarden.config.json). Secrets are never in it: it names the
// environment variables or files that hold them.
import { z } from 'zod';
import {
  envName,
  name,
  passfileField,
  passwordEnvField,
  portField,
  urlWithoutCredentials,
  userField,
} from './fields.js';
import { backupFromSchema, replicationSchema, standbysSchema } from './replication.js';
import { repositorySchema } from './repositories.js';
import { retentionSchema, walRetentionSchema } from './retention.js';
import { walGetSchema } from './walGet.js';

/** When a scheduled job runs: a crontab line (in `schedules.timeZone`), or an interval such as "6 hours". */
export const jobTimingSchema = z.union([
  z
    .object({
      cron: z.string().regex(/^\S+( \S+){4}$/, 'five crontab fields: minute hour day-of-month month day-of-week'),
    })
    .strict(),
  z.object({ every: z.string().min(1) }).strict(),
]);
export type JobTiming = z.infer<typeof jobTimingSchema>;

export const clusterSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: portField.default(5432),
    user: userField.default('postgres'),
    passwordEnv: passwordEnvField.optional(),
    passfile: passfileField.optional(),
    /** Database to connect to for cluster-wide queries. */
    maintenanceDatabase: z.string().default('postgres'),
    /** libpq sslmode for every connection. */
    sslmode: z.enum(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']).optional(),
    /** The data directory on the database host (used by physical backup and PITR). */
    dataDirectory: z.string().optional(),
    /** Task queue of the worker on the database host; default `pgwarden@<host>`. */
    hostQueue: z.string().optional(),
    /**
     * Where the server writes its output when pgwarden starts it (a PITR's recovered server, a
     * rollback's original): `pg_ctl -l`. Default `<dataDirectory>.log`, beside the data directory.
     * With logging_collector on, PostgreSQL writes to its own log_directory after the first lines.
     */
    logFile: z.string().optional(),
    /** Directory of pg_dump, pg_restore, ...; default /usr/lib/postgresql/<server major>/bin, else PATH. */
    binDir: z.string().optional(),
    /** Commands (argv, no shell) run around a restore: stop the applications, start them again. */
    hooks: z
      .object({ preRestore: z.array(z.string()).min(1).optional(), postRestore: z.array(z.string()).min(1).optional() })
      .strict()
      .default({}),
    /**
     * Point-in-time recovery waits this long for the WAL archive to catch up: in plan, for the WAL
     * that reaches the target; for `latest`, before the stop, for the segment it just finished.
     */
    archiveWaitSeconds: z.number().int().min(0).default(120),
    /** Repository (a key of `repositories`, type local) that holds this cluster's backups. */
    repository: z.string().default('local'),
    /** Offsite repositories (keys of `repositories`, type s3 or rsync) this cluster syncs to; default all of them. */
    offsite: z.array(z.string()).optional(),
    /**
     * Databases whose backups are scheduled and verified one by one (`pgwarden/main/app/full-daily`).
     * Unset: one nightly fullBackup of every database (`pgwarden/main/all/full-daily`), and no
     * scheduled verify (verifyBackup restores one database).
     */
    databases: z.array(name).min(1).optional(),
    /** Per job: false to leave it out, or its own timing (see `schedules`). */
    schedules: z.record(z.string(), z.union([z.literal(false), jobTimingSchema])).default({}),
    /** Streaming standbys pgwarden monitors (and, later, backs up from); see docs/standbys.md. */
    standbys: standbysSchema.optional(),
    /** Default "prefer-standby" with standbys, else "primary". */
    backupFrom: backupFromSchema.optional(),
    replication: replicationSchema.optional(),
  })
  .strict()
  .refine((c) => c.backupFrom !== 'standby' || (c.standbys?.length ?? 0) > 0, {
    path: ['backupFrom'],
    message: '"standby" needs at least one entry in standbys',
  });
export type ClusterConfig = z.infer<typeof clusterSchema>;

export const encryptionSchema = z
  .object({
    /** Armored or binary OpenPGP public key files; every backup is encrypted to all of them. */
    recipients: z.array(z.string().min(1)).min(1),
    /** Private key file for restore and verification (only on hosts that restore). */
    privateKeyFile: z.string().optional(),
    /** Environment variable holding the private key's passphrase. */
    passphraseEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional(),
  })
  .strict();
export type EncryptionConfig = z.infer<typeof encryptionSchema>;

export const compressionSchema = z
  .object({
    algorithm: z.enum(['zstd', 'none']).default('zstd'),
    /**
     * zstd level. 1 by measurement (scripts/bench/backup.ts): on realistic rows it stores less than
     * level 3 in half the CPU time; higher levels cost CPU for a few percent.
     */
    level: z.number().int().min(1).max(19).default(1),
  })
  .strict();

export const walPushSchema = z
  .object({
    /**
     * Push ahead of PostgreSQL's archiver (pgBackRest's archive-async): a pusher process archives
     * every WAL file PostgreSQL has marked ready, `processes` at a time, and archive_command only
     * checks the pusher's answer for its own file. For clusters that write WAL faster than one push
     * at a time keeps up with.
     */
    async: z.boolean().default(false),
    /** Holds `<cluster>/`: the pusher's lock, log and answers, the PostgreSQL user's alone. Default <tmpdir>/pgwarden-spool-<uid>. */
    spoolDirectory: z.string().min(1).optional(),
    processes: z.number().int().min(1).max(16).default(2),
    /** How long archive_command waits for its file before it fails (PostgreSQL retries). */
    waitSeconds: z.number().int().min(1).max(3600).default(60),
  })
  .strict();

export const limitsSchema = z
  .object({
    /** Cap a backup's read rate (bytes per second of pg_dump output), like pg_basebackup --max-rate. */
    maxRate: z.number().int().positive().optional(),
  })
  .strict();

export const verificationSchema = z
  .object({
    /** Restore into a temporary database on this cluster instead of the backup's own. */
    cluster: z.string().optional(),
    /** SQL checks per database: the first column of the first row must be a number >= min. */
    checks: z
      .record(
        z.string(),
        z.array(z.object({ name: z.string(), sql: z.string().min(1), min: z.number().default(1) }).strict()),
      )
      .default({}),
  })
  .strict();

export const walMaintenanceSchema = z
  .object({
    /** Alert when WAL waits to be archived and nothing was archived for this long. */
    archiveLagAlertSeconds: z.number().int().positive().default(600),
    /** Alert when the cluster's WAL archive stores more than this many bytes. */
    archiveSizeAlertBytes: z.number().int().positive().optional(),
  })
  .strict();

export const schedulesSchema = z
  .object({
    /** IANA time zone of the crontab lines, e.g. Europe/Berlin. */
    timeZone: z.string().default('UTC'),
    /** A run missed while Temporal was down still starts if it is this late at most. */
    catchupWindow: z.string().default('1 hour'),
    /** Pause a schedule after a failed run (off: the next run may well succeed, and healthCheck alerts). */
    pauseOnFailure: z.boolean().default(false),
  })
  .strict();

export const healthSchema = z
  .object({
    /** Alert when a database's newest logical backup (or the newest base backup) is older. */
    maxBackupAgeHours: z.number().positive().default(24),
    /** Alert when no backup of a database was verified by a restore for this long. */
    maxVerifiedRestoreAgeDays: z.number().positive().default(7),
    /** Alert when the newest base backup is older (base backups run weekly; archive lag: walMaintenance.archiveLagAlertSeconds). */
    maxBaseBackupAgeDays: z.number().positive().default(8),
    /** Alert when the repository's file system is fuller than this. */
    maxRepositoryUsedPercent: z.number().min(1).max(100).default(85),
    /** Objects committed locally this long ago and still missing on a remote count as drift. */
    offsiteGraceHours: z.number().nonnegative().default(30),
    /** What local retention keeps only because an offsite repository has not confirmed it alerts once committed this long ago. */
    offsiteWaitingHours: z.number().positive().default(48),
    /** A firing alert is sent again after this long; a change (new alert, all clear) at once. */
    repeatHours: z.number().positive().default(6),
  })
  .strict();

export const notificationsSchema = z
  .object({
    /** JSON POST of every alert, approval request and all-clear. */
    webhook: z
      .object({
        url: urlWithoutCredentials('tokenEnv'),
        /** Environment variable with a bearer token sent as Authorization (never in the config). */
        tokenEnv: envName.optional(),
      })
      .strict()
      .optional(),
    /** Mail through the local sendmail (skipped, with a warning, where none is installed). */
    email: z
      .object({
        to: z.array(z.string().min(3)).min(1),
        from: z.string().default('pgwarden'),
        sendmail: z.string().default('/usr/sbin/sendmail'),
      })
      .strict()
      .optional(),
  })
  .strict();

export const metricsSchema = z
  .object({
    /** The worker serves Prometheus metrics at http://<host>:<port>/metrics; unset: off. */
    port: z.number().int().min(0).max(65535).optional(),
    host: z.string().default('127.0.0.1'),
  })
  .strict();

export const temporalSchema = z
  .object({
    address: z.string().default('127.0.0.1:7233'),
    namespace: z.string().default('default'),
    taskQueue: z.string().default('pgwarden'),
  })
  .strict();

export const configSchema = z
  .object({
    temporal: temporalSchema.prefault({}),
    clusters: z.record(name, clusterSchema),
    repositories: z.record(name, repositorySchema),
    encryption: encryptionSchema.optional(),
    retention: retentionSchema.prefault({}),
    walRetention: walRetentionSchema.prefault({}),
    compression: compressionSchema.prefault({}),
    walPush: walPushSchema.prefault({}),
    walGet: walGetSchema.prefault({}),
    limits: limitsSchema.prefault({}),
    verification: verificationSchema.prefault({}),
    walMaintenance: walMaintenanceSchema.prefault({}),
    schedules: schedulesSchema.prefault({}),
    health: healthSchema.prefault({}),
    notifications: notificationsSchema.prefault({}),
    metrics: metricsSchema.prefault({}),
    worker: z
      .object({
        /** This host's name for its host-local queue `pgwarden@<host>`. */
        host: z.string().optional(),
        maxConcurrentActivities: z.number().int().min(1).default(4),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((config, ctx) => {
    for (const [clusterName, cluster] of Object.entries(config.clusters)) {
      if (!(cluster.repository in config.repositories)) {
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', clusterName, 'repository'],
          message: `names repository "${cluster.repository}", which is not in "repositories"`,
        });
      } else if (config.repositories[cluster.repository]!.type !== 'local') {
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', clusterName, 'repository'],
          message: `"${cluster.repository}" is offsite; a cluster's repository is a local one`,
        });
      }
      for (const offsite of cluster.offsite ?? []) {
        const repo = config.repositories[offsite];
        if (!repo || repo.type === 'local') {
          ctx.addIssue({
            code: 'custom',
            path: ['clusters', clusterName, 'offsite'],
            message: `names "${offsite}", which is not an s3 or rsync repository in "repositories"`,
          });
        }
      }
      if (config.verification.cluster && !(config.verification.cluster in config.clusters)) {
        ctx.addIssue({
          code: 'custom',
          path: ['verification', 'cluster'],
          message: `names cluster "${config.verification.cluster}", which is not in "clusters"`,
        });
      }
      if (cluster.passwordEnv && cluster.passfile) {
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', clusterName],
          message: 'set passwordEnv or passfile, not both',
        });
      }
    }
  });
export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

// The logical backup of one database: preflight, then one streaming pass
// pg_dump -Fc -Z0 → zstd → OpenPGP → sha256 → repository, with the row counts taken in the dump's
// own snapshot, pg_restore --list reading the dump as it streams by, the cluster's globals beside
// it, and manifest.json written last.
import { join } from 'node:path';
import { Context, log } from '@temporalio/activity';
import type { Config } from '../config/index.js';
import { expectedBackupBytes, formatBytes } from '../lib/diskSpace.js';
import { ErrorType, nonRetryable } from '../lib/errors.js';
import { backupIdProblem, databasesToBackUp, isSafeName } from '../lib/ids.js';
import { artifactName } from '../lib/layout.js';
import { MANIFEST_FORMAT, totalRows, type BackupSourceRecord, type LogicalManifest } from '../lib/manifest.js';
import type { Privileges } from '../lib/privileges.js';
import { dumpDatabase, dumpGlobals, type DumpResult } from '../postgres/dump.js';
import { loadRecipientKeys, Sha256Stage, type Compression, type RecipientKeys } from '../stream/pipeline.js';
import * as postgres from '../postgres/connection.js';
import { readPrivileges } from '../postgres/privileges.js';
import { openRepository } from '../storage/clusterRepository.js';
import {
  createBackupSourceActivities,
  pauseReplay,
  pickBackupSource,
  resumeAfterDump,
  sourceRef,
} from './backupSource.js';

export const PGWARDEN_VERSION = '0.1.0';

export interface LogicalBackupInput {
  cluster: string;
  database: string;
  backupId: string;
  /** Part of a `"*"` run: recorded in the manifest (verifyBackup `"*"` verifies that run's backups). */
  allDatabases?: boolean;
  /** Where to dump from, as preflight chose it (clusters with standbys); absent: the primary. */
  source?: BackupSourceRecord;
}

export interface PreflightResult {
  serverVersion: string;
  databaseBytes: number;
  expectedBytes: number;
  freeBytes: number;
  /** Fingerprints of the recipients' keys; empty when backups are not encrypted. */
  recipients: string[];
  /** A committed backup with this id exists already: the backup step will return it. */
  backupExists: boolean;
  /** Clusters with standbys: where this run's backup comes from (recorded in the manifest). */
  source?: BackupSourceRecord;
}

export interface LogicalBackupResult {
  cluster: string;
  database: string;
  backupId: string;
  path: string;
  bytes: number;
  sha256: string;
  tables: number;
  rows: number;
  encrypted: boolean;
  seconds: number;
  /** The backup was committed by an earlier attempt or run; nothing was dumped again. */
  reused: boolean;
  /** Clusters with standbys: where it was taken. */
  source?: BackupSourceRecord;
}

export interface BackupProgress {
  phase: 'connect' | 'dump' | 'globals' | 'commit';
  /** Bytes written to the repository so far (compressed and encrypted). */
  storedBytes: number;
}

export interface LogicalBackupDeps {
  config: Config;
  env: NodeJS.ProcessEnv;
}

function checkInput(input: LogicalBackupInput): void {
  if (!isSafeName(input.database)) {
    throw nonRetryable(
      ErrorType.InvalidInput,
      `database name "${input.database}" cannot be used as a repository path component`,
    );
  }
  const problem = backupIdProblem(input.backupId);
  if (problem) throw nonRetryable(ErrorType.InvalidInput, problem);
}

async function recipientsFor(config: Config): Promise<RecipientKeys | undefined> {
  return config.encryption ? loadRecipientKeys(config.encryption.recipients) : undefined;
}

export function createLogicalBackupActivities({ config, env }: LogicalBackupDeps) {
  const compression: Compression = config.compression;

  /** Every reason a backup cannot succeed, found before anything is written. */
  async function preflightLogicalBackup(input: LogicalBackupInput): Promise<PreflightResult> {
    const cluster = postgres.clusterRef(config, input.cluster);
    checkInput(input);
    const repo = openRepository(config, input.cluster);
    const recipients = await recipientsFor(config);
    const { serverVersion, databaseBytes } = await postgres.withConnection(
      cluster,
      cluster.config.maintenanceDatabase,
      env,
      async (client) => {
        const info = await postgres.serverInfo(client);
        const { rows } = await client.query<{ size: string | null }>(
          `SELECT pg_database_size(datname) AS size FROM pg_database WHERE datname = $1 AND datallowconn AND NOT datistemplate`,
          [input.database],
        );
        if (rows.length === 0) {
          throw nonRetryable(
            ErrorType.UnknownDatabase,
            `cluster "${input.cluster}" has no database "${input.database}" that can be backed up`,
          );
        }
        return { serverVersion: info.version, databaseBytes: Number(rows[0]!.size) };
      },
    );
    await repo.assertWritable();
    const existing = await repo.readManifest(repo.logical(input.database, input.backupId));
    const previous = (await repo.logicalBackups(input.database)).at(-1);
    const expectedBytes = expectedBackupBytes(databaseBytes, previous?.bytes);
    const freeBytes = await repo.freeBytes();
    const source = await pickBackupSource(config, env, input.cluster);
    if (!existing && freeBytes < expectedBytes) {
      throw nonRetryable(
        ErrorType.InsufficientDiskSpace,
        `repository "${repo.name}" at ${repo.root} has ${formatBytes(freeBytes)} free; the backup of "${input.database}" needs about ${formatBytes(expectedBytes)}`,
      );
    }
    return {
      serverVersion,
      databaseBytes,
      expectedBytes,
      freeBytes,
      recipients: recipients?.fingerprints ?? [],
      backupExists: !!existing,
      ...(source ? { source } : {}),
    };
  }

  /**
   * The databases a `"*"` backup takes: connectable, not templates, not pgwarden's verification
   * scratch databases, and not a restore's kept copies (`*_pre_restore_*`, `*_restore_*`) unless
   * `includeRestoreCopies`.
   */
  async function listClusterDatabases(input: { cluster: string; includeRestoreCopies?: boolean }): Promise<string[]> {
    const cluster = postgres.clusterRef(config, input.cluster);
    const all = await postgres.withConnection(cluster, cluster.config.maintenanceDatabase, env, postgres.listDatabases);
    const { take, skip } = databasesToBackUp(all, input.includeRestoreCopies);
    if (skip.length) log.info(`"*" backup of ${input.cluster} skips pgwarden's own databases: ${skip.join(', ')}`);
    return take;
  }

  /**
   * Dumps, stores and commits one backup. Safe to run again: a committed backup is returned as it
   * is; anything else in its directory is an interrupted attempt and is removed first.
   */
  async function createLogicalBackup(input: LogicalBackupInput): Promise<LogicalBackupResult> {
    const ctx = Context.current();
    const started = Date.now();
    const cluster = sourceRef(config, input.cluster, input.source);
    checkInput(input);
    const repo = openRepository(config, input.cluster);
    const dir = repo.logical(input.database, input.backupId);
    const fromStandby = input.source?.role === 'standby';
    let paused = false;

    const existing = await repo.readManifest(dir);
    if (existing) return summarize(existing, dir, started, true);

    const recipients = await recipientsFor(config);
    const stored = new Sha256Stage();
    let phase: BackupProgress['phase'] = 'connect';
    const beat = () => ctx.heartbeat({ phase, storedBytes: stored.bytes } satisfies BackupProgress);
    const timer = setInterval(beat, 2000);
    beat();

    await repo.prepareDir(dir);
    try {
      const startedAt = new Date().toISOString();
      const client = await postgres.connect(cluster, input.database, env);
      let dump: DumpResult;
      let info: postgres.ServerInfo;
      let privileges: Privileges;
      try {
        info = await postgres.serverInfo(client);
        // On a standby, replay waits while the dump reads: no recovery conflict can cancel it
        // (docs/standbys.md); resumed below, and by the workflow whatever happens to this worker.
        if (fromStandby) {
          paused = true;
          await pauseReplay(client, info.versionNum);
        }
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const { rows } = await client.query<{ s: string }>('SELECT pg_export_snapshot() AS s');
        // In the transaction whose snapshot pg_dump uses, and before it runs: the catalog helper
        // functions (pg_get_userbyid, format_type...) read the latest catalogs, not the snapshot, so
        // read them before the dump's minutes give a rename or a grant time to slip in between.
        privileges = await readPrivileges(client);
        phase = 'dump';
        const dumpName = artifactName('dump.pgdump', compression.algorithm, !!recipients);
        dump = await dumpDatabase({
          client,
          snapshot: rows[0]!.s,
          path: join(dir, dumpName),
          name: dumpName,
          tool: (name) => postgres.pgTool(name, cluster.config, info.versionNum),
          env: postgres.libpqEnv(cluster, input.database, env),
          compression,
          recipients,
          signal: ctx.cancellationSignal,
          maxRate: config.limits.maxRate,
          stored,
        });
        await client.query('COMMIT');
      } finally {
        await client.end().catch(() => undefined);
      }

      phase = 'globals';
      const globalsName = artifactName('globals.sql', compression.algorithm, !!recipients);
      const globals = await dumpGlobals({
        path: join(dir, globalsName),
        name: globalsName,
        tool: postgres.pgTool('pg_dumpall', cluster.config, info.versionNum),
        env: postgres.libpqEnv(cluster, cluster.config.maintenanceDatabase, env),
        compression,
        recipients,
        signal: ctx.cancellationSignal,
      });

      phase = 'commit';
      const manifest: LogicalManifest = {
        format: MANIFEST_FORMAT,
        kind: 'logical',
        cluster: input.cluster,
        database: input.database,
        backupId: input.backupId,
        serverVersion: info.version,
        serverVersionNum: info.versionNum,
        startedAt,
        finishedAt: new Date().toISOString(),
        bytes: dump.artifact.bytes + globals.artifact.bytes,
        sha256: dump.artifact.sha256,
        artifacts: [dump.artifact, globals.artifact],
        compression:
          compression.algorithm === 'zstd' ? { algorithm: 'zstd', level: compression.level } : { algorithm: 'none' },
        encryption: recipients ? { format: 'openpgp', recipients: recipients.fingerprints } : null,
        dumpFormat: 'custom',
        tocEntries: dump.tocEntries,
        globals: { rolePasswords: globals.rolePasswords },
        tables: dump.tables,
        privileges,
        ...(input.allDatabases ? { allDatabases: true } : {}),
        verifications: [],
        pgwardenVersion: PGWARDEN_VERSION,
        ...(input.source ? { source: input.source } : {}),
      };
      await repo.commit(dir, manifest);
      return summarize(manifest, dir, started, false);
    } catch (err) {
      // Clean our own partial output; the retry (or the operator) starts from a clean directory.
      await repo.removeDir(dir).catch(() => undefined);
      if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? err;
      throw err;
    } finally {
      clearInterval(timer);
      if (paused) await resumeAfterDump(cluster, env);
    }
  }

  return {
    preflightLogicalBackup,
    listClusterDatabases,
    createLogicalBackup,
    ...createBackupSourceActivities({ config, env }),
  };
}

function summarize(m: LogicalManifest, path: string, started: number, reused: boolean): LogicalBackupResult {
  return {
    cluster: m.cluster,
    database: m.database,
    backupId: m.backupId,
    path,
    bytes: m.bytes,
    sha256: m.sha256,
    tables: m.tables.length,
    rows: totalRows(m.tables),
    encrypted: m.encryption !== null,
    seconds: (Date.now() - started) / 1000,
    reused,
    ...(m.source ? { source: m.source } : {}),
  };
}

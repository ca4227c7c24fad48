// Verify-by-restore: the stored bytes match the manifest; they decrypt, decompress and restore into
// a temporary database `pgwarden_verify_<backupId>`; its tables and row counts match the manifest;
// the configured SQL checks pass. The temporary database is pgwarden's own and is always dropped.
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import type { Config } from '../../config/index.js';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import { backupsOfNewestRun, type BackupRef } from '../../lib/allDatabases.js';
import { backupIdProblem, isSafeName } from '../../lib/ids.js';
import type { Artifact, LogicalManifest, Verification } from '../../lib/manifest.js';
import { hashFile } from '../../stream/pipeline.js';
import * as postgres from '../../postgres/connection.js';
import { checkRoles } from '../../postgres/privileges.js';
import { assertIntact, globalsHint } from './failures.js';
import { openRepository } from '../../storage/clusterRepository.js';
import type { LocalRepository } from '../../storage/repository.js';
import { createScratchDatabaseActivities } from './scratch.js';

export interface VerifyTarget {
  cluster: string;
  database: string;
  backupId: string;
}

export interface VerifyPlan extends VerifyTarget {
  /** Restore only these tables (names as pg_restore --table takes them). */
  tables?: string[];
  /** The cluster the temporary database is made on. */
  restoreCluster: string;
  /** `pgwarden_verify_<backupId>`. */
  scratchDatabase: string;
}

export interface RestoreResult {
  restoreSeconds: number;
  /** The OID of the database restored into: how a retried swap knows its own finished work. */
  databaseOid?: number;
}

export interface CompareResult {
  tables: number;
  rows: number;
  checks: { name: string; value: number; min: number }[];
  /** Owners and privileges: compared with the manifest, or why not. */
  privileges: string;
}

export function scratchDatabaseName(backupId: string): string {
  return `pgwarden_verify_${backupId.toLowerCase().replace(/[^a-z0-9]/g, '_')}`;
}

export function createVerifyActivities({ config, env }: { config: Config; env: NodeJS.ProcessEnv }) {
  const clusterRef = (name: string) => postgres.clusterRef(config, name);

  const { createLikeBackup, dropScratchDatabase, restoreIntoScratch, compareWithManifest } =
    createScratchDatabaseActivities({ config, env, manifestOf });

  async function manifestOf(
    t: VerifyTarget,
  ): Promise<{ manifest: LogicalManifest; dir: string; repo: LocalRepository }> {
    const repo = openRepository(config, t.cluster);
    const dir = repo.logicalBackupDir(t.cluster, t.database, t.backupId);
    const manifest = await repo.readManifest(dir);
    if (!manifest)
      throw nonRetryable(
        ErrorType.NoBackup,
        `no committed backup ${t.cluster}/${t.database}/${t.backupId} in repository "${repo.name}"`,
      );
    return { manifest, dir, repo };
  }

  /**
   * verifyBackup "*": the backups of the newest `"*"` run, one per database (lib/allDatabases.ts).
   * Nothing to verify is an error: a schedule that verifies nothing must not look green.
   */
  async function planVerifyAll(input: { cluster: string }): Promise<{ run?: string; targets: VerifyTarget[] }> {
    clusterRef(input.cluster);
    const repo = openRepository(config, input.cluster);
    const backups: BackupRef[] = [];
    for (const database of await repo.listLogicalDatabases(input.cluster)) {
      for (const m of await repo.listLogicalBackups(input.cluster, database))
        backups.push({ database, backupId: m.backupId, allDatabases: m.allDatabases });
    }
    const { run, targets } = backupsOfNewestRun(backups);
    if (targets.length === 0)
      throw nonRetryable(
        ErrorType.NoBackup,
        `no committed logical backup of cluster "${input.cluster}" in repository "${repo.name}"`,
      );
    return { ...(run !== undefined ? { run } : {}), targets: targets.map((t) => ({ cluster: input.cluster, ...t })) };
  }

  /**
   * Picks the backup (default: the newest not yet verified; or the newest), names the temporary
   * database, and checks that the cluster it is restored on has every role the dump names.
   */
  async function planVerify(input: {
    cluster: string;
    database: string;
    backupId?: string;
    pick?: 'unverified' | 'newest';
    restoreCluster?: string;
  }): Promise<VerifyPlan> {
    clusterRef(input.cluster);
    if (!isSafeName(input.database))
      throw nonRetryable(ErrorType.InvalidInput, `database name "${input.database}" is not valid here`);
    const problem = input.backupId === undefined ? undefined : backupIdProblem(input.backupId);
    if (problem) throw nonRetryable(ErrorType.InvalidInput, problem);
    const repo = openRepository(config, input.cluster);
    const backups = await repo.listLogicalBackups(input.cluster, input.database);
    const chosen = input.backupId
      ? backups.find((b) => b.backupId === input.backupId)
      : input.pick === 'newest'
        ? backups.at(-1)
        : ([...backups].reverse().find((b) => !b.verifications.some((v) => v.ok)) ?? backups.at(-1));
    if (!chosen) {
      throw nonRetryable(
        ErrorType.NoBackup,
        `no committed backup ${input.backupId ? `${input.backupId} ` : ''}of ${input.cluster}/${input.database} in repository "${repo.name}"`,
      );
    }
    const restoreCluster = input.restoreCluster ?? config.verification.cluster ?? input.cluster;
    if (chosen.privileges) {
      const target = clusterRef(restoreCluster);
      const hint = globalsHint(repo.logicalBackupDir(input.cluster, input.database, chosen.backupId), chosen);
      await postgres.withConnection(target, target.config.maintenanceDatabase, env, (client) =>
        checkRoles(client, chosen.privileges!.roles, `cluster "${restoreCluster}"`, hint),
      );
      // The copy is created with the original's encoding and locale: a locale the target's OS lacks
      // fails here, before approval and before the preRestore hook, not in the restore. A throwaway
      // database (a name the scratch-drop guard knows), always dropped.
      const probe = `${scratchDatabaseName(chosen.backupId)}_locale`;
      await dropScratchDatabase({ restoreCluster, scratchDatabase: probe });
      try {
        await createLikeBackup(restoreCluster, probe, chosen.privileges.database);
      } finally {
        await dropScratchDatabase({ restoreCluster, scratchDatabase: probe });
      }
    }
    return {
      cluster: input.cluster,
      database: input.database,
      backupId: chosen.backupId,
      restoreCluster,
      scratchDatabase: scratchDatabaseName(chosen.backupId),
    };
  }

  /** Every stored artifact (but those of `skipRoles`) has the size and sha256 the manifest recorded. */
  async function checkIntegrity(t: VerifyTarget & { skipRoles?: Artifact['role'][] }): Promise<{ bytes: number }> {
    const { manifest, dir } = await manifestOf(t);
    let bytes = 0;
    for (const a of manifest.artifacts.filter((x) => !t.skipRoles?.includes(x.role))) {
      const path = join(dir, a.name);
      let actual: { sha256: string; bytes: number };
      try {
        actual = await hashFile(path);
      } catch (err) {
        throw nonRetryable(
          ErrorType.IntegrityError,
          `${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
      assertIntact(path, actual, a);
      bytes += actual.bytes;
      Context.current().heartbeat({ phase: 'checksum', bytes });
    }
    return { bytes };
  }

  /** Appends a verification run to the manifest (rewritten atomically). Idempotent per `at`. */
  async function recordVerification(input: VerifyTarget & { verification: Verification }): Promise<void> {
    const { manifest, dir, repo } = await manifestOf(input);
    if (manifest.verifications.some((v) => v.at === input.verification.at)) return;
    manifest.verifications.push(input.verification);
    await repo.commit(dir, manifest);
  }

  return {
    planVerify,
    planVerifyAll,
    checkIntegrity,
    restoreIntoScratch,
    compareWithManifest,
    dropScratchDatabase,
    recordVerification,
  };
}

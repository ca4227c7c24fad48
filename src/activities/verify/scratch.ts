// The temporary database verify restores into, pgwarden's own: made like the backed-up database
// (encoding, collation, ctype, locale provider), restored into (file → gpg → zstd → pg_restore),
// compared with the manifest, and always dropped.
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import type { Config } from '../../config/index.js';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import { isScratchDatabaseName } from '../../lib/ids.js';
import type { LogicalManifest } from '../../lib/manifest.js';
import { createDatabaseSql } from '../../lib/databaseSql.js';
import { comparePrivileges, localeProviderProblem, type DatabaseProperties } from '../../lib/privileges.js';
import { hashFile } from '../../stream/pipeline.js';
import { backupDecryptionKey } from '../../stream/decryptionKey.js';
import * as postgres from '../../postgres/connection.js';
import { applyDatabaseProperties, readPrivileges, withoutDatabaseLimits } from '../../postgres/privileges.js';
import { startTool, TOOL_ENV } from '../../stream/processes.js';
import { readBack } from '../../stream/readBack.js';
import { assertIntact, throwFirst } from './failures.js';
import { markInUse } from '../retention.js';
import type { CompareResult, RestoreResult, VerifyPlan, VerifyTarget } from './verify.js';

export interface ScratchDatabaseDependencies {
  config: Config;
  env: NodeJS.ProcessEnv;
  /** The backup's committed manifest and its directory (NoBackup when there is none). */
  manifestOf(t: VerifyTarget): Promise<{ manifest: LogicalManifest; dir: string }>;
}

export function createScratchDatabaseActivities({ config, env, manifestOf }: ScratchDatabaseDependencies) {
  const clusterRef = (name: string) => postgres.clusterRef(config, name);

  /**
   * CREATE DATABASE with the backed-up database's encoding, collation, ctype and locale provider.
   * What the target cannot hold (a locale its OS lacks, a provider its version lacks) fails
   * non-retryably, naming them: no retry installs a locale.
   */
  async function createLikeBackup(
    restoreCluster: string,
    database: string,
    p: DatabaseProperties | undefined,
  ): Promise<{ version: string; versionNum: number; databaseOid: number }> {
    const cluster = clusterRef(restoreCluster);
    return postgres.withConnection(cluster, cluster.config.maintenanceDatabase, env, async (client) => {
      const server = await postgres.serverInfo(client);
      const locale = () =>
        `encoding ${p?.encoding}, collation '${p?.collate}', ctype '${p?.ctype}'${p?.localeProvider ? `, locale provider '${p.localeProvider}'${p.icuLocale ? ` locale '${p.icuLocale}'` : ''}` : ''}`;
      const problem = localeProviderProblem(p, server.versionNum);
      if (problem)
        throw nonRetryable(
          ErrorType.LocaleUnavailable,
          `cluster "${restoreCluster}" cannot create a database like the backup's (${locale()}): ${problem}`,
        );
      await client.query(createDatabaseSql(database, p, server.versionNum)).catch((err: Error & { code?: string }) => {
        // 42809: invalid locale name (PostgreSQL's code for it); 22023: an encoding the locale does not match, an ICU locale it rejects.
        if (err.code !== '42809' && err.code !== '22023') throw err;
        throw nonRetryable(
          ErrorType.LocaleUnavailable,
          `cluster "${restoreCluster}" cannot create a database with the backup's ${locale()}: ${err.message}. Install the locale on the cluster's host (locale -a lists them; then restart PostgreSQL) or restore onto a cluster that has it`,
        );
      });
      const { rows } = await client.query<{ oid: string }>(
        'SELECT oid::text AS oid FROM pg_database WHERE datname = $1',
        [database],
      );
      return { ...server, databaseOid: Number(rows[0]!.oid) };
    });
  }

  /** Drops the temporary database if it exists (terminating its sessions). Idempotent. */
  async function dropScratchDatabase(plan: Pick<VerifyPlan, 'restoreCluster' | 'scratchDatabase'>): Promise<void> {
    if (!isScratchDatabaseName(plan.scratchDatabase))
      throw nonRetryable(
        ErrorType.InvalidInput,
        `refusing to drop "${plan.scratchDatabase}": not a database pgwarden made`,
      );
    const cluster = clusterRef(plan.restoreCluster);
    await postgres.withConnection(cluster, cluster.config.maintenanceDatabase, env, async (client) => {
      await client.query(`DROP DATABASE IF EXISTS ${postgres.quoteIdent(plan.scratchDatabase)} WITH (FORCE)`);
    });
  }

  /** Restores the backup into a fresh temporary database: file → gpg --decrypt → zstd -d → pg_restore. */
  async function restoreIntoScratch(plan: VerifyPlan): Promise<RestoreResult> {
    const ctx = Context.current();
    const { manifest, dir } = await manifestOf(plan);
    const dump = manifest.artifacts.find((a) => a.role === 'dump');
    if (!dump) throw nonRetryable(ErrorType.IntegrityError, `manifest of ${plan.backupId} lists no dump`);
    // The worker's private key and passphrase; gpg unlocks it. (Not openpgp: unlocking a GnuPG key
    // there costs ~130 MB for its iterated S2K, more than the whole restore.)
    const key = manifest.encryption ? backupDecryptionKey(config, env) : undefined;

    // A retry starts from an empty database: whatever an earlier attempt restored is dropped.
    await dropScratchDatabase(plan);
    const cluster = clusterRef(plan.restoreCluster);
    // The original's encoding, collation, ctype and locale provider (recorded since pgwarden kept them).
    const info = await createLikeBackup(plan.restoreCluster, plan.scratchDatabase, manifest.privileges?.database);

    const started = Date.now();
    const release = await markInUse(dir, `${plan.scratchDatabase}-${ctx.info.workflowExecution?.runId ?? 'run'}`);
    try {
      // Owners and privileges are restored (pg_restore as a superuser can act as every owner); the
      // roles themselves were checked in plan.
      const restoreArgs = ['--exit-on-error', '--no-password', `--dbname=${plan.scratchDatabase}`];
      for (const table of plan.tables ?? []) restoreArgs.push(`--table=${table}`);
      const restoreEnv = { ...TOOL_ENV, ...postgres.libpqEnv(cluster, plan.scratchDatabase, env) };
      const signal = ctx.cancellationSignal;
      const dumpPath = join(dir, dump.name);
      const results = await readBack({
        path: dumpPath,
        key,
        compression: manifest.compression.algorithm,
        reader: (stdin) =>
          startTool('pg_restore', postgres.pgTool('pg_restore', cluster.config, info.versionNum), restoreArgs, {
            stdin,
            stdout: 'ignore',
            env: restoreEnv,
            signal,
          }),
        signal,
        maxRate: config.limits.maxRate,
        heartbeat: (bytes) => ctx.heartbeat({ phase: 'restore', bytes, totalBytes: dump.bytes }),
      });
      if (results[0].status === 'fulfilled' && results.every((r) => r.status === 'fulfilled')) {
        assertIntact(dumpPath, results[0].value, dump);
      } else {
        // A corrupt file shows up as a decryption or restore error: say what it really is.
        if (!signal.aborted) assertIntact(dumpPath, await hashFile(dumpPath), dump);
        throwFirst(dumpPath, results);
      }
      // pg_restore emits the database's own properties only with --create, into a database of the
      // original name: pgwarden restores under another name, so it applies them from the manifest.
      // Not for single tables: that database only holds them for copying back.
      if (manifest.privileges && !plan.tables?.length) {
        await postgres.withConnection(cluster, cluster.config.maintenanceDatabase, env, (client) =>
          applyDatabaseProperties(client, plan.scratchDatabase, manifest.privileges!.database),
        );
      }
    } finally {
      await release();
    }
    return { restoreSeconds: (Date.now() - started) / 1000, databaseOid: info.databaseOid };
  }

  /** Tables and row counts of the temporary database against the manifest; then the SQL checks. */
  async function compareWithManifest(plan: VerifyPlan): Promise<CompareResult> {
    const { manifest } = await manifestOf(plan);
    const cluster = clusterRef(plan.restoreCluster);
    return postgres.withConnection(cluster, plan.scratchDatabase, env, async (client) => {
      await withoutDatabaseLimits(client);
      const tables = await postgres.countRows(client, await postgres.listTables(client));
      const key = (t: { schema: string; name: string }) => `${t.schema}.${t.name}`;
      const restored = new Map(tables.map((t) => [key(t), t.rows]));
      const problems: string[] = [];
      for (const t of manifest.tables) {
        const rows = restored.get(key(t));
        if (rows === undefined) problems.push(`table ${key(t)} is missing`);
        else if (rows !== t.rows) problems.push(`table ${key(t)} has ${rows} rows, manifest says ${t.rows}`);
      }
      const expected = new Set(manifest.tables.map(key));
      for (const t of tables) if (!expected.has(key(t))) problems.push(`table ${key(t)} is not in the manifest`);
      let privileges =
        'not recorded in this backup (made before pgwarden recorded them): not compared, and the database-level properties not restored';
      if (manifest.privileges) {
        const server = await postgres.serverInfo(client);
        await client.query('BEGIN READ ONLY');
        const restoredPrivileges = await readPrivileges(client);
        await client.query('COMMIT');
        problems.push(
          ...comparePrivileges(manifest.privileges, restoredPrivileges, {
            backup: manifest.serverVersionNum,
            restored: server.versionNum,
          }),
        );
        privileges = `${manifest.privileges.objects.length} objects and the database's properties compared`;
      }
      const checks: CompareResult['checks'] = [];
      for (const check of config.verification.checks[plan.database] ?? []) {
        const { rows } = await client.query(check.sql).catch((err: Error) => {
          throw nonRetryable(ErrorType.VerificationFailed, `check "${check.name}" failed to run: ${err.message}`);
        });
        const value = Number(Object.values(rows[0] ?? {})[0]);
        checks.push({ name: check.name, value, min: check.min });
        if (!(value >= check.min))
          problems.push(`check "${check.name}" returned ${value}, expected at least ${check.min}`);
      }
      if (problems.length)
        throw nonRetryable(
          ErrorType.VerificationFailed,
          `backup ${plan.backupId} does not match its manifest: ${problems.join('; ')}`,
        );
      return { tables: tables.length, rows: tables.reduce((s, t) => s + t.rows, 0), checks, privileges };
    });
  }

  return { createLikeBackup, dropScratchDatabase, restoreIntoScratch, compareWithManifest };
}

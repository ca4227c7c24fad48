// The recover and verify steps: recovery settings written, the server started and followed until
// promoted, then checked; and the work directory cleaned up.
import { existsSync } from 'node:fs';
import { chmod, chown, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import { recoverySettingResets, recoverySettings } from '../../lib/recovery.js';
import { freePortOnLoopback } from '../../host/ports.js';
import * as postgres from '../../postgres/connection.js';
import { writeFileAtomic } from '../../host/atomicFile.js';
import type { PitrContext } from './context.js';
import { isRunning, pgCtl } from './server.js';
import {
  collectorOffsets,
  keepRecoveryLog,
  logTail,
  prepareLog,
  readServerLog,
  recoveryLogOf,
  recoveryStopLine,
} from './serverLog.js';
import { stagedRestoreCommand } from './stage.js';
import type { RecoveryOutcome, RecoveryPlan } from './types.js';

const RECOVERY_BLOCK_HEADER = '\n# pgwarden point-in-time recovery\n';

/** The data directory recovery runs in: the live path (in-place) or the staged copy (rehearsal). */
const recoveryDir = (plan: RecoveryPlan) =>
  plan.mode === 'in-place' ? plan.dataDirectory : join(plan.workDirectory, 'data');

/**
 * Settings at the end of postgresql.auto.conf (later lines win), under `header`. A repeated attempt
 * replaces its own earlier block instead of stacking another; the file is swapped in atomically
 * and keeps the data directory owner's ownership. Also createStandby's (its own header).
 */
export async function writeSettingsBlock(
  dataDir: string,
  header: string,
  settings: Record<string, string>,
  owner: { uid: number; gid: number },
): Promise<void> {
  const file = join(dataDir, 'postgresql.auto.conf');
  const current = existsSync(file) ? await readFile(file, 'utf8') : '';
  const at = current.indexOf(header);
  const kept = at === -1 ? current : current.slice(0, at);
  // Quoted as ALTER SYSTEM does: the config parser treats both ' and \ specially.
  const block = Object.entries(settings)
    .map(([k, v]) => `${k} = '${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`)
    .join('\n');
  await writeFileAtomic(file, `${kept.replace(/\n*$/, '\n')}${header}${block}\n`);
  await chown(file, owner.uid, owner.gid);
  await chmod(file, 0o600);
}

export function createRecoverActivities({ config, env, clusterRef, cc, at, serverLogOf, runClusterHook }: PitrContext) {
  /**
   * The recover step: recovery settings for PostgreSQL 12+ (recovery.signal, never recovery.conf),
   * start, follow replay until promoted. After a worker crash it picks up the running server.
   */
  async function recover(plan: RecoveryPlan): Promise<RecoveryOutcome> {
    const ctx = Context.current();
    const started = Date.now();
    const dataDir = recoveryDir(plan);
    // In place, the server logs where the cluster logs (it keeps running with this output); a
    // rehearsal's scratch server logs beside its work directory, kept if the rehearsal fails.
    const logFile = plan.mode === 'in-place' ? serverLogOf(plan) : recoveryLogOf(plan);
    const settingsMarker = join(plan.workDirectory, 'SETTINGS');
    let port = clusterRef(plan.cluster).config.port;
    let logOffset = 0;
    let since = Date.now();
    let collected: Record<string, number> = {};
    if (!existsSync(settingsMarker)) {
      if (plan.mode === 'rehearsal') port = await freePortOnLoopback();
      const walDir = join(plan.workDirectory, 'wal');
      const settings = recoverySettings(plan.target, {
        restoreCommand: stagedRestoreCommand(walDir),
        timeline: plan.targetTimeline,
      });
      if (plan.mode === 'rehearsal') {
        // A drill never reaches the live cluster's archive or port.
        // Its log is its own: everything on stderr into pg_ctl's log file, never the live cluster's log_directory.
        Object.assign(settings, {
          port: String(port),
          listen_addresses: '127.0.0.1',
          unix_socket_directories: plan.workDirectory,
          archive_mode: 'off',
          logging_collector: 'off',
          log_destination: 'stderr',
        });
      }
      const owner = await stat(dataDir);
      await writeSettingsBlock(dataDir, RECOVERY_BLOCK_HEADER, settings, owner);
      await writeFile(join(dataDir, 'recovery.signal'), '');
      await chown(join(dataDir, 'recovery.signal'), owner.uid, owner.gid);
      // This start's output begins at the log's current end (the file is durable and shared across starts).
      logOffset = await prepareLog(logFile, owner);
      collected = await collectorOffsets(cc(plan), dataDir);
      // Atomic: a worker killed here must leave either no marker (settings written again) or a whole one.
      await writeFileAtomic(settingsMarker, JSON.stringify({ port, logOffset, since, collected }));
    } else {
      ({
        port,
        logOffset = 0,
        since = 0,
        collected = {},
      } = JSON.parse(await readFile(settingsMarker, 'utf8')) as {
        port: number;
        logOffset?: number;
        since?: number;
        collected?: Record<string, number>;
      });
    }
    const serverLog = () => readServerLog(dataDir, logFile, logOffset, since, collected);
    let startedAt = 0;
    if (!(await isRunning(cc(plan), dataDir))) {
      // -W: replay can take hours; this loop follows it and heartbeats instead of pg_ctl waiting.
      const r = await pgCtl(cc(plan), dataDir, ['start', '-l', logFile, '-W'], { reject: false });
      if (r.exitCode !== 0)
        throw nonRetryable(
          ErrorType.RecoveryFailed,
          `pg_ctl start failed (log ${await keepRecoveryLog(plan, await serverLog())}): ${r.stderr || r.stdout}`,
        );
      startedAt = Date.now();
    }
    const cluster = clusterRef(plan.cluster);
    const host = plan.mode === 'rehearsal' ? '127.0.0.1' : cluster.config.host;
    for (;;) {
      if (ctx.cancellationSignal.aborted) throw new Error('cancelled');
      const state = await probe(cluster, host, port).catch(() => undefined);
      if (state && !state.inRecovery) {
        const log = await serverLog();
        await keepRecoveryLog(plan, log);
        return {
          timeline: state.timeline,
          reachedLsn: state.lsn,
          stoppedAt: recoveryStopLine(log),
          port,
          recoverSeconds: (Date.now() - started) / 1000,
        };
      }
      ctx.heartbeat({ phase: 'replay', lsn: state?.lsn });
      // A server that just started may not have written postmaster.pid yet.
      if (!state && Date.now() - startedAt > 5000 && !(await isRunning(cc(plan), dataDir))) {
        const log = await serverLog();
        throw nonRetryable(
          ErrorType.RecoveryFailed,
          `the server stopped during recovery (log ${await keepRecoveryLog(plan, log)}): ${logTail(log)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async function probe(
    cluster: postgres.ClusterRef,
    host: string,
    port: number,
  ): Promise<{ inRecovery: boolean; lsn: string; timeline: number }> {
    return postgres.withConnection(at(cluster, host, port), cluster.config.maintenanceDatabase, env, async (client) => {
      const { rows } = await client.query<{ r: boolean; lsn: string; tli: number }>(
        `SELECT pg_is_in_recovery() AS r,
                CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text AS lsn,
                (SELECT timeline_id FROM pg_control_checkpoint()) AS tli`,
      );
      return { inRecovery: rows[0]!.r, lsn: rows[0]!.lsn, timeline: Number(rows[0]!.tli) };
    });
  }

  /**
   * The verify step: the configured SQL checks on the recovered server; recovery settings removed
   * (in-place); the post-start hook; a rehearsal's scratch cluster stopped and removed.
   */
  async function verifyRecovery(
    plan: RecoveryPlan & { port: number },
  ): Promise<{ checks: { database: string; name: string; value: number }[] }> {
    const cluster = clusterRef(plan.cluster);
    const host = plan.mode === 'rehearsal' ? '127.0.0.1' : cluster.config.host;
    const checks: { database: string; name: string; value: number }[] = [];
    for (const [database, list] of Object.entries(config.verification.checks)) {
      await postgres.withConnection(at(cluster, host, plan.port), database, env, async (client) => {
        for (const check of list) {
          const { rows } = await client.query(check.sql);
          const value = Number(Object.values(rows[0] ?? {})[0]);
          if (!(value >= check.min))
            throw nonRetryable(
              ErrorType.VerificationFailed,
              `check "${check.name}" on ${database} returned ${value}, expected at least ${check.min}`,
            );
          checks.push({ database, name: check.name, value });
        }
      });
    }
    if (plan.mode === 'in-place') {
      // The recovery settings served their purpose; a later crash recovery must not see them.
      await postgres.withConnection(
        at(cluster, host, plan.port),
        cluster.config.maintenanceDatabase,
        env,
        async (client) => {
          for (const reset of recoverySettingResets()) await client.query(reset);
          await client.query('SELECT pg_reload_conf()');
        },
      );
      await runClusterHook(plan, 'postRestore');
    }
    return { checks };
  }

  /** Removes the working directory (staged copy, decoded WAL); in rehearsal mode, stops the scratch server first. */
  async function cleanupRecovery(plan: RecoveryPlan & { keepLog?: boolean }): Promise<{ keptLog?: string }> {
    const scratch = join(plan.workDirectory, 'data');
    if (existsSync(join(scratch, 'postmaster.pid')))
      await pgCtl(cc(plan), scratch, ['stop', '-m', 'immediate', '-w'], { reject: false });
    await rm(plan.workDirectory, { recursive: true, force: true });
    // A rehearsal's log goes with it, unless the rehearsal failed: then it is kept, and named.
    if (plan.mode !== 'rehearsal') return {};
    if (!plan.keepLog) await rm(recoveryLogOf(plan), { force: true });
    return plan.keepLog && existsSync(recoveryLogOf(plan)) ? { keptLog: recoveryLogOf(plan) } : {};
  }

  return { recover, verifyRecovery, cleanupRecovery };
}

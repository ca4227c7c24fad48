// The recover and verify steps: recovery settings written, the server started and followed until
// promoted, then checked; and the work directory cleaned up.
import { existsSync } from 'node:fs';
import { chown, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import { recoverySettingResets, recoverySettings } from '../../lib/recovery.js';
import { freePortOnLoopback } from '../../host/ports.js';
import * as postgres from '../../postgres/connection.js';
import { writeFileAtomic } from '../../host/atomicFile.js';
import type { PitrContext } from './context.js';
import { preReplayLogOf, preReplayOf, redoStartOf } from './preReplay.js';
import { isRunning, mayAcceptConnections, pgCtl } from './server.js';
import {
  collectorOffsets,
  keepRecoveryLog,
  logTail,
  prepareLog,
  readServerLog,
  recoveryLogOf,
  recoveryStopLine,
} from './serverLog.js';
import { majorOf, RECOVERY_BLOCK_HEADER, scratchSettings, writeSettingsBlock } from './settings.js';
import { stagedRestoreCommand } from './stage.js';
import type { RecoveryOutcome, RecoveryPlan } from './types.js';

export { writeSettingsBlock } from './settings.js';

/** The data directory recovery runs in: the live path (in-place) or the staged copy (rehearsal). */
const recoveryDir = (plan: RecoveryPlan) =>
  plan.mode === 'in-place' ? plan.dataDirectory : join(plan.workDirectory, 'data');

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
      // A drill never reaches the live cluster's archive or port; its log is its own.
      if (plan.mode === 'rehearsal')
        Object.assign(settings, scratchSettings(port, plan.workDirectory, await majorOf(dataDir)));
      const owner = await stat(dataDir);
      // This block replaces the one of the replay before the approval (its port, its socket, no
      // archiving); and the standby.signal that replay to `latest` ran under goes: with it, the
      // server would wait for more WAL instead of promoting.
      await writeSettingsBlock(dataDir, RECOVERY_BLOCK_HEADER, settings, owner);
      if ((await preReplayOf(plan))?.standby) await rm(join(dataDir, 'standby.signal'), { force: true });
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
    let lastLook = 0;
    for (;;) {
      if (ctx.cancellationSignal.aborted) throw new Error('cancelled');
      // Only once the server may accept connections: a refused attempt is a FATAL line in its log.
      const state = (await mayAcceptConnections(dataDir))
        ? await probe(cluster, host, port).catch(() => undefined)
        : undefined;
      if (state && !state.inRecovery) {
        const log = await serverLog();
        // In place, the kept recovery log begins with the replay before the approval (its own file in the work directory).
        const before = existsSync(preReplayLogOf(plan)) ? await readFile(preReplayLogOf(plan), 'utf8') : '';
        await keepRecoveryLog(plan, before ? `--- before the approval ---\n${before}\n--- after it ---\n${log}` : log);
        const redoStart = redoStartOf(log);
        return {
          timeline: state.timeline,
          reachedLsn: state.lsn,
          stoppedAt: recoveryStopLine(log),
          ...(redoStart ? { redoStart } : {}),
          port,
          recoverSeconds: (Date.now() - started) / 1000,
        };
      }
      ctx.heartbeat({ phase: 'replay', lsn: state?.lsn });
      // A server that just started may not have written postmaster.pid yet. pg_ctl status once a
      // second at most: a long replay would otherwise spawn it ten times a second.
      if (!state && Date.now() - startedAt > 5000 && Date.now() - lastLook >= 1000) {
        lastLook = Date.now();
        if (!(await isRunning(cc(plan), dataDir))) {
          const log = await serverLog();
          throw nonRetryable(
            ErrorType.RecoveryFailed,
            `the server stopped during recovery (log ${await keepRecoveryLog(plan, log)}): ${logTail(log)}`,
          );
        }
      }
      // Every 100 ms: the promotion is seen ~0.1 s sooner on average than at 250 ms; while the server
      // starts up the look is at postmaster.pid, not a connection attempt (each would log a FATAL line).
      await new Promise((r) => setTimeout(r, 100));
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

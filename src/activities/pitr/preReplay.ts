// In place, before the approval: the staged copy recovered in the work directory while the live
// cluster runs, on a private loopback port (no archiving, its own socket directory and log), so
// that after the approval only what is left is replayed with the cluster down. To a time, LSN or
// restore point: recovery.signal with the target and recovery_target_action = 'shutdown' (the
// server stops at the target without promoting; a start with the same target replays from its last
// restartpoint to the target). To `latest`: standby.signal until replay reaches the end of the WAL
// staged, then a fast shutdown (a restartpoint); after the approval, recovery.signal and the WAL
// the archive lacked. Nothing here touches the live cluster.
import { existsSync } from 'node:fs';
import { chown, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import { recoverySettings } from '../../lib/recovery.js';
import { formatLsn, parseLsn, parseSegmentName, WAL_SEGMENT_BYTES } from '../../lib/wal.js';
import { writeFileAtomic } from '../../host/atomicFile.js';
import { freePortOnLoopback } from '../../host/ports.js';
import * as postgres from '../../postgres/connection.js';
import type { PitrContext } from './context.js';
import { isRunning, pgCtl, serverTool } from './server.js';
import { keepRecoveryLog, logTail, prepareLog, recoveryStopLine } from './serverLog.js';
import { RECOVERY_BLOCK_HEADER, scratchSettings, writeSettingsBlock } from './settings.js';
import { stagedRestoreCommand } from './stage.js';
import type { PreReplayOutcome, RecoveryPlan } from './types.js';

type WorkPlan = Pick<RecoveryPlan, 'workDirectory'>;
/** The replay's own log, in the work directory (the recovery log kept after the approval begins with it). */
export const preReplayLogOf = (plan: WorkPlan) => join(plan.workDirectory, 'pre-replay.log');
const startedMarker = (plan: WorkPlan) => join(plan.workDirectory, 'PRE-REPLAY');
const doneMarker = (plan: WorkPlan) => join(plan.workDirectory, 'PRE-REPLAYED');

/** The outcome of the replay before the approval, once it is done (read again by `recover`). */
export async function preReplayOf(plan: WorkPlan): Promise<PreReplayOutcome | undefined> {
  if (!existsSync(doneMarker(plan))) return undefined;
  return JSON.parse(await readFile(doneMarker(plan), 'utf8')) as PreReplayOutcome;
}

/** Where a start's replay began, from its log ("redo starts at 0/2000028"). */
export function redoStartOf(log: string): string | undefined {
  return /redo starts at ([0-9A-F]+\/[0-9A-F]+)/i.exec(log)?.[1];
}

/**
 * Seconds between the first line matching `from` and the last matching `to`, by the timestamps
 * the pre-replay's log lines begin with (its log_line_prefix and log_timezone are pgwarden's).
 */
export function logSeconds(log: string, from: RegExp, to: RegExp): number | undefined {
  const lines = log.split('\n');
  const at = (line: string | undefined) => {
    const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?) UTC/.exec(line ?? '');
    return m ? Date.parse(`${m[1]}T${m[2]}Z`) : undefined;
  };
  const start = at(lines.find((l) => from.test(l)));
  const end = at(lines.findLast((l) => to.test(l)));
  return start !== undefined && end !== undefined && end >= start ? (end - start) / 1000 : undefined;
}

/** pg_controldata's fields of a stopped data directory. */
async function controlData(plan: RecoveryPlan, cc: PitrContext['cc'], dataDir: string): Promise<Map<string, string>> {
  const r = await serverTool('pg_controldata', cc(plan), dataDir, []);
  return new Map(
    String(r.stdout)
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf(':')).trim(), l.slice(l.indexOf(':') + 1).trim()] as [string, string]),
  );
}

export function createPreReplayActivities({ env, clusterRef, cc, at }: PitrContext) {
  async function replayLsn(plan: RecoveryPlan, port: number): Promise<bigint | undefined> {
    const cluster = clusterRef(plan.cluster);
    return postgres
      .withConnection(at(cluster, '127.0.0.1', port), cluster.config.maintenanceDatabase, env, async (client) => {
        const { rows } = await client.query<{ lsn: string | null }>('SELECT pg_last_wal_replay_lsn()::text AS lsn');
        return rows[0]!.lsn ? parseLsn(rows[0]!.lsn) : undefined;
      })
      .catch(() => undefined);
  }

  /**
   * The replay before the approval (in place). Safe to repeat: a retry picks the running server
   * up, or starts it again (it resumes from its restartpoint); a done replay returns its outcome.
   */
  async function preReplay(plan: RecoveryPlan): Promise<PreReplayOutcome> {
    const ctx = Context.current();
    const done = await preReplayOf(plan);
    if (done) return done;
    const dataDir = join(plan.workDirectory, 'data');
    const logFile = preReplayLogOf(plan);
    const standby = 'latest' in plan.target;
    const segments = plan.walFiles.map((f) => parseSegmentName(f)?.segment).filter((s) => s !== undefined);
    // `latest`: the end of the WAL staged (the archive when the plan was made).
    const lastSegmentStart = segments.length ? segments.at(-1)! * BigInt(WAL_SEGMENT_BYTES) : 0n;
    let port: number;
    let since: number;
    if (!existsSync(startedMarker(plan))) {
      port = await freePortOnLoopback();
      since = Date.now();
      const settings = recoverySettings(plan.target, {
        restoreCommand: stagedRestoreCommand(join(plan.workDirectory, 'wal')),
        timeline: plan.targetTimeline,
        action: 'shutdown',
      });
      // A standby has no target: it replays what there is and waits for more.
      if (standby) delete settings.recovery_target_action;
      // hot_standby: replay's progress is read from the server while it runs.
      // Timestamps pgwarden can read: the replay's rate, its start and its shutdown come from its log.
      Object.assign(settings, scratchSettings(port, plan.workDirectory), {
        hot_standby: 'on',
        log_line_prefix: '%m [%p] ',
        log_timezone: 'UTC',
      });
      const owner = await stat(dataDir);
      await writeSettingsBlock(dataDir, RECOVERY_BLOCK_HEADER, settings, owner);
      const signal = join(dataDir, standby ? 'standby.signal' : 'recovery.signal');
      await writeFile(signal, '');
      await chown(signal, owner.uid, owner.gid);
      await rm(logFile, { force: true });
      await prepareLog(logFile, owner);
      await writeFileAtomic(startedMarker(plan), JSON.stringify({ port, since }));
    } else {
      ({ port, since } = JSON.parse(await readFile(startedMarker(plan), 'utf8')) as { port: number; since: number });
    }
    const log = () => readFile(logFile, 'utf8').catch(() => '');
    const shutAtTarget = async () => /shutdown at recovery target/.test(await log());
    let startSeconds = 0;
    let startedAt = Date.now();
    if (!(await isRunning(cc(plan), dataDir)) && !(!standby && (await shutAtTarget()))) {
      const r = await pgCtl(cc(plan), dataDir, ['start', '-l', logFile, '-W'], { reject: false });
      if (r.exitCode !== 0)
        throw nonRetryable(
          ErrorType.RecoveryFailed,
          `the replay before the approval could not start (log ${await keepRecoveryLog(plan, await log())}): ${logTail(await log())}`,
        );
      startedAt = Date.now();
    }
    let reached: bigint | undefined;
    let steadySince = Date.now();
    let stopSeconds: number;
    for (;;) {
      if (ctx.cancellationSignal.aborted) throw new Error('cancelled');
      const lsn = await replayLsn(plan, port);
      if (lsn !== undefined && !startSeconds) startSeconds = (Date.now() - startedAt) / 1000;
      if (lsn !== undefined && lsn !== reached) {
        reached = lsn;
        steadySince = Date.now();
      }
      ctx.heartbeat({ phase: 'pre-replay', lsn: reached === undefined ? undefined : formatLsn(reached) });
      // `latest`: at the end of the staged WAL, replay waits for more; a fast shutdown makes a restartpoint.
      // Replay that stalls short of it is stopped all the same: what is left is replayed after the approval.
      const steady = Date.now() - steadySince;
      if (standby && reached !== undefined && steady > (reached >= lastSegmentStart ? 1500 : 30_000)) {
        const stopping = Date.now();
        await pgCtl(cc(plan), dataDir, ['stop', '-m', 'fast', '-w', '-t', '600']);
        stopSeconds = (Date.now() - stopping) / 1000;
        break;
      }
      if (lsn === undefined && Date.now() - startedAt > 2000 && !(await isRunning(cc(plan), dataDir))) {
        if (!standby && (await shutAtTarget())) {
          stopSeconds = 1; // read from the log below
          break;
        }
        throw nonRetryable(
          ErrorType.RecoveryFailed,
          `the replay before the approval stopped short of ${plan.targetDescription} (log ${await keepRecoveryLog(plan, await log())}): ${logTail(await log())}; nothing was touched`,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    // Where it got to: the restartpoint its shutdown made, and the minimum recovery point its flushes recorded.
    const control = await controlData(plan, cc, dataDir);
    const text = await log();
    const redoStart = parseLsn(redoStartOf(text) ?? control.get("Latest checkpoint's REDO location")!);
    const restart = parseLsn(control.get("Latest checkpoint's REDO location")!);
    const minRecovery = parseLsn(control.get('Minimum recovery ending location') ?? '0/0');
    const end = [reached ?? 0n, minRecovery, restart].reduce((a, b) => (b > a ? b : a));
    const seconds = (Date.now() - since) / 1000;
    const replayed = Number(end - redoStart);
    // This start's part of the log (a retry's server started again): the replay's rate, its start
    // and its shutdown by the server's own clock; what was measured from here where the log cannot say.
    const started = text.lastIndexOf('starting PostgreSQL');
    const last = started === -1 ? text : text.slice(text.lastIndexOf('\n', started) + 1);
    const lastRedo = parseLsn(redoStartOf(last) ?? formatLsn(redoStart));
    const replaySeconds =
      (standby ? undefined : logSeconds(last, /redo starts at/, /recovery stopping/)) ??
      (steadySince - startedAt) / 1000 - startSeconds;
    startSeconds = logSeconds(last, /starting PostgreSQL/, /redo starts at/) ?? startSeconds;
    if (!standby) stopSeconds = logSeconds(last, /recovery stopping/, /database system is shut down/) ?? stopSeconds;
    const outcome: PreReplayOutcome = {
      standby,
      redoStart: formatLsn(redoStart),
      reachedLsn: formatLsn(end),
      restartLsn: formatLsn(restart),
      ...(standby ? {} : { stoppedAt: recoveryStopLine(text) }),
      replayedBytes: replayed,
      remainingBytes: Number(end - restart),
      seconds,
      bytesPerSecond: Number(end - lastRedo) / Math.max(replaySeconds, 0.1),
      startSeconds,
      stopSeconds,
    };
    await writeFileAtomic(doneMarker(plan), JSON.stringify(outcome));
    return outcome;
  }

  return { preReplay };
}

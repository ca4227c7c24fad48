// In place, before the approval: the staged copy recovered in the work directory while the live
// cluster runs, on a private loopback port (no archiving, its own socket directory and log), so
// that after the approval only what is left is replayed with the cluster down. To a time, LSN or
// restore point: recovery.signal with the target and recovery_target_action = 'shutdown' (the
// server stops at the target without promoting; a start with the same target replays from its last
// restartpoint to the target). To `latest`: standby.signal until replay reaches the end of the WAL
// staged, then a fast shutdown (a restartpoint); after the approval, recovery.signal and the WAL
// the archive lacked. Nothing here touches the live cluster.
import { existsSync } from 'node:fs';
import { chown, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
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
import { majorOf, RECOVERY_BLOCK_HEADER, scratchSettings, writeSettingsBlock } from './settings.js';
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
  const start = logTime(log, from);
  const end = logTime(log, to, true);
  return start !== undefined && end !== undefined && end >= start ? (end - start) / 1000 : undefined;
}

/** When the first (or last) line matching `re` was logged, in ms since the epoch, by its timestamp. */
export function logTime(log: string, re: RegExp, last = false): number | undefined {
  const lines = log.split('\n');
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?) UTC/.exec(
    (last ? lines.findLast((l) => re.test(l)) : lines.find((l) => re.test(l))) ?? '',
  );
  return m ? Date.parse(`${m[1]}T${m[2]}Z`) : undefined;
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
  /** How far the scratch server replayed; undefined while it does not answer, or when what answers is not it. */
  async function replayLsn(plan: RecoveryPlan, port: number, dataDir: string): Promise<bigint | undefined> {
    const cluster = clusterRef(plan.cluster);
    const ours = await realpath(dataDir);
    return postgres
      .withConnection(at(cluster, '127.0.0.1', port), cluster.config.maintenanceDatabase, env, async (client) => {
        // data_directory is readable by superusers and pg_read_all_settings only; without it, not checked.
        const { rows } = await client.query<{ lsn: string | null; dir: string | null }>(
          `SELECT pg_last_wal_replay_lsn()::text AS lsn,
                  CASE WHEN pg_has_role('pg_read_all_settings', 'MEMBER') THEN current_setting('data_directory') END AS dir`,
        );
        // Another server on this port (ours could not bind it) is never taken for ours.
        const dir = rows[0]!.dir;
        if (dir !== null && (await realpath(dir).catch(() => dir)) !== ours) return undefined;
        return rows[0]!.lsn ? parseLsn(rows[0]!.lsn) : undefined;
      })
      .catch(() => undefined);
  }

  /** The replay's settings block, for a server on `port` (a retry's fresh port replaces the block). */
  async function writePreReplaySettings(plan: RecoveryPlan, dataDir: string, port: number) {
    const settings = recoverySettings(plan.target, {
      restoreCommand: stagedRestoreCommand(join(plan.workDirectory, 'wal')),
      timeline: plan.targetTimeline,
      action: 'shutdown',
    });
    // A standby has no target: it replays what there is and waits for more.
    if ('latest' in plan.target) delete settings.recovery_target_action;
    // hot_standby: replay's progress is read from the server while it runs.
    // Timestamps pgwarden can read: the replay's rate, its start and its shutdown come from its log.
    Object.assign(settings, scratchSettings(port, plan.workDirectory, await majorOf(dataDir)), {
      hot_standby: 'on',
      log_line_prefix: '%m [%p] ',
      log_timezone: 'UTC',
    });
    await writeSettingsBlock(dataDir, RECOVERY_BLOCK_HEADER, settings, await stat(dataDir));
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
    // The port, when the replay began, and when its server was last started (a retry's own start resets it).
    let marker: { port: number; since: number; startedAt?: number };
    const retry = existsSync(startedMarker(plan));
    if (!retry) {
      marker = { port: await freePortOnLoopback(), since: Date.now() };
      await writePreReplaySettings(plan, dataDir, marker.port);
      const owner = await stat(dataDir);
      const signal = join(dataDir, standby ? 'standby.signal' : 'recovery.signal');
      await writeFile(signal, '');
      await chown(signal, owner.uid, owner.gid);
      await rm(logFile, { force: true });
      await prepareLog(logFile, owner);
      await writeFileAtomic(startedMarker(plan), JSON.stringify(marker));
    } else {
      marker = JSON.parse(await readFile(startedMarker(plan), 'utf8')) as typeof marker;
    }
    const log = () => readFile(logFile, 'utf8').catch(() => '');
    // At the target: the server exited by itself (recovery_target_action = 'shutdown') and its
    // control file says it shut down in recovery; the log (in English, lc_messages = 'C') only informs.
    const shutAtTarget = async () =>
      !standby &&
      !(await isRunning(cc(plan), dataDir)) &&
      (await controlData(plan, cc, dataDir)).get('Database cluster state') === 'shut down in recovery';
    let startSeconds = 0;
    if (!(await isRunning(cc(plan), dataDir)) && !(await shutAtTarget())) {
      // A retry's server starts on a fresh port: the recorded one may be another server's by now
      // (pg_ctl -W says nothing of a server that could not bind it).
      if (retry) {
        marker.port = await freePortOnLoopback();
        await writePreReplaySettings(plan, dataDir, marker.port);
      }
      marker.startedAt = Date.now();
      await writeFileAtomic(startedMarker(plan), JSON.stringify(marker));
      const r = await pgCtl(cc(plan), dataDir, ['start', '-l', logFile, '-W'], { reject: false });
      if (r.exitCode !== 0)
        throw nonRetryable(
          ErrorType.RecoveryFailed,
          `the replay before the approval could not start (log ${await keepRecoveryLog(plan, await log())}): ${logTail(await log())}`,
        );
    }
    const { port, since } = marker;
    // A server picked up runs since an earlier attempt started it: its start is the one measured from.
    const startedAt = marker.startedAt ?? Date.now();
    const begun = Date.now();
    let reached: bigint | undefined;
    let steadySince = Date.now();
    let stopSeconds: number;
    for (;;) {
      if (ctx.cancellationSignal.aborted) throw new Error('cancelled');
      const lsn = await replayLsn(plan, port, dataDir);
      if (lsn !== undefined && !startSeconds) startSeconds = Math.max((Date.now() - startedAt) / 1000, 0.001);
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
      if (lsn === undefined && Date.now() - begun > 2000 && !(await isRunning(cc(plan), dataDir))) {
        if (await shutAtTarget()) {
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
    // A server picked up from an earlier attempt replayed before this one looked: its rate is
    // measured from its own start (the log's redo line, else the start recorded), never from this attempt's.
    startSeconds = logSeconds(last, /starting PostgreSQL/, /redo starts at/) ?? startSeconds;
    const redoAt = logTime(last, /redo starts at/);
    const replaySeconds =
      (standby ? undefined : logSeconds(last, /redo starts at/, /recovery stopping/)) ??
      (redoAt !== undefined ? (steadySince - redoAt) / 1000 : (steadySince - startedAt) / 1000 - startSeconds);
    // `latest` stopped short of the staged WAL's end (a stall): what it did not replay is left for after the approval.
    const unreplayed = standby && lastSegmentStart > end ? lastSegmentStart - end : 0n;
    if (!standby) stopSeconds = logSeconds(last, /recovery stopping/, /database system is shut down/) ?? stopSeconds;
    const outcome: PreReplayOutcome = {
      standby,
      redoStart: formatLsn(redoStart),
      reachedLsn: formatLsn(end),
      restartLsn: formatLsn(restart),
      ...(standby ? {} : { stoppedAt: recoveryStopLine(text) }),
      replayedBytes: replayed,
      remainingBytes: Number(end - restart + unreplayed),
      seconds,
      bytesPerSecond: Number(end - lastRedo) / Math.max(replaySeconds, 0.1),
      startSeconds,
      stopSeconds,
      ...(standby ? { archiveWaitSeconds: clusterRef(plan.cluster).config.archiveWaitSeconds } : {}),
    };
    await writeFileAtomic(doneMarker(plan), JSON.stringify(outcome));
    return outcome;
  }

  return { preReplay };
}

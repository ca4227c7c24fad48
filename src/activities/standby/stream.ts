// createStandby's last step: does the new standby stream from its primary? Read from both ends: the
// primary's pg_stat_replication (its application_name is the standby's name) and the standby's own
// pg_stat_wal_receiver. A server that stopped fails the run with its log's last lines.
import { open } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import { withConnection } from '../../postgres/connection.js';
import { readPrimaryReplication, readStandbySelf, standbyRef } from '../../postgres/replication.js';
import type { PitrContext } from '../pitr/context.js';
import { isRunning } from '../pitr/server.js';
import { logTail } from '../pitr/serverLog.js';
import { standbyLogOf, standbyOf } from './build.js';
import type { StandbyPlan, StandbyStreaming } from './types.js';

/** How long one call watches before it reports back (the workflow shows the detail and asks again). */
const WATCH_MS = 20_000;
/**
 * `pg_ctl start -W` returns before the postmaster writes postmaster.pid, which takes seconds on a
 * loaded host: a server is judged stopped only once it has not been running for this long.
 */
const START_GRACE_MS = 15_000;

async function tailOf(file: string): Promise<string> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return '';
  try {
    const size = (await handle.stat()).size;
    const buffer = Buffer.alloc(Math.min(size, 16_384));
    await handle.read(buffer, 0, buffer.length, size - buffer.length);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

export function createStandbyStreamActivities(ctx: PitrContext) {
  const { env, clusterRef, cc } = ctx;

  async function look(plan: StandbyPlan): Promise<StandbyStreaming> {
    const primary = clusterRef(plan.cluster);
    const configured = standbyOf(ctx, plan.cluster, plan.standby);
    const standby = standbyRef(primary, configured);
    const self = await withConnection(standby, standby.config.maintenanceDatabase, env, readStandbySelf).catch(
      (err: Error) => err,
    );
    if (self instanceof Error) return { streaming: false, detail: `not accepting connections yet: ${self.message}` };
    if (!self.inRecovery)
      throw nonRetryable(
        ErrorType.RecoveryFailed,
        `the server at ${configured.host}:${configured.port} (standby ${plan.standby}'s address) is not in recovery: another server answers there, or ${plan.dataDirectory} was promoted`,
      );
    const replication = await withConnection(primary, primary.config.maintenanceDatabase, env, readPrimaryReplication);
    // By the application_name its primary_conninfo sets, never by address: another standby on the
    // same host must not pass for this one.
    const sender = replication.senders.find((r) => r.applicationName === plan.standby);
    const at = { receiverStatus: self.receiverStatus ?? undefined, replayLsn: self.replayLsn ?? undefined };
    const fromPrimary = sender
      ? { senderState: sender.state, lagBytes: sender.replayLagBytes ?? undefined }
      : { senderState: undefined };
    const streaming = self.receiverStatus === 'streaming' && sender?.state === 'streaming';
    const detail = streaming
      ? `streaming from the primary, replayed to ${self.replayLsn} (${sender?.replayLagBytes ?? '?'} bytes behind)`
      : self.receiverStatus
        ? `WAL receiver ${self.receiverStatus}, primary sees it ${sender?.state ?? 'not at all'}; replayed to ${self.replayLsn}`
        : `replaying from the archive, at ${self.replayLsn ?? 'the start'}; not connected to the primary yet`;
    return { streaming, detail, ...at, ...fromPrimary };
  }

  /**
   * Watches the standby for up to 20 s, heartbeating what it sees; returns as soon as both ends say
   * streaming, or with what it saw last (the workflow shows it in `progress` and asks again, bounded).
   */
  async function waitForStreaming(plan: StandbyPlan): Promise<StandbyStreaming> {
    const activity = Context.current();
    const until = Date.now() + WATCH_MS;
    let downSince: number | undefined;
    for (;;) {
      if (!(await isRunning(cc(plan), plan.dataDirectory))) {
        downSince ??= Date.now();
        if (Date.now() - downSince >= START_GRACE_MS)
          throw nonRetryable(
            ErrorType.RecoveryFailed,
            `the standby's server in ${plan.dataDirectory} stopped (log ${standbyLogOf(plan)}): ${logTail(await tailOf(standbyLogOf(plan)))}`,
          );
        activity.heartbeat({ phase: 'stream', detail: 'waiting for the server to start' });
        await new Promise((r) => setTimeout(r, 500));
        activity.cancellationSignal.throwIfAborted();
        continue;
      }
      downSince = undefined;
      const seen = await look(plan);
      activity.heartbeat({ phase: 'stream', ...seen });
      if (seen.streaming || Date.now() >= until) return seen;
      await new Promise((r) => setTimeout(r, 500));
      activity.cancellationSignal.throwIfAborted();
    }
  }

  return { waitForStreaming };
}

// Every activity heartbeats while it runs, whatever it does, so that a short heartbeat timeout
// (src/lib/activityOptions.ts) tells the server within seconds that the worker running it died,
// and another worker takes the step over: a kill costs seconds instead of the step's whole
// start-to-close timeout (minutes for a quick step, 15 for the database host's). The activities'
// own heartbeats carry progress (phase, bytes) for the UI and `pgwarden status`, and a retried
// attempt reads the last ones back (Info.heartbeatDetails): the automatic heartbeat repeats the
// last details the attempt sent (before it sent any, those of the previous attempt) instead of
// overwriting them with nothing.
import type { Context } from '@temporalio/activity';
import type { ActivityInterceptors, ActivityInterceptorsFactory } from '@temporalio/worker';

/** Well inside the 20 s heartbeat timeout of the activity options, even on a busy worker. */
export const AUTO_HEARTBEAT_MS = 5_000;

export function autoHeartbeat(intervalMs = AUTO_HEARTBEAT_MS): ActivityInterceptorsFactory {
  return (ctx: Context): ActivityInterceptors => {
    let last: unknown = ctx.info.heartbeatDetails;
    const send = ctx.heartbeat.bind(ctx);
    // Context.current().heartbeat, ctx.heartbeat and activity.heartbeat() all reach this property
    // of the one Context of the attempt: recording what passes through it keeps the details.
    Object.defineProperty(ctx, 'heartbeat', {
      configurable: true,
      enumerable: true,
      writable: false,
      value: (details?: unknown) => {
        last = details;
        send(details);
      },
    });
    return {
      inbound: {
        async execute(input, next) {
          const timer = setInterval(() => send(last), intervalMs);
          try {
            return await next(input);
          } finally {
            clearInterval(timer);
          }
        },
      },
    };
  };
}

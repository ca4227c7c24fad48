// The config's jobs as Temporal Schedules (src/lib/schedules.ts says which), for
// `pgwarden schedules ...` and the tests. apply is declarative: it creates what is missing, updates what changed, and removes the schedules
// of the configured clusters that the config no longer asks for; schedules of other clusters are
// never touched.
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleOptions,
  type ScheduleOptionsAction,
  type ScheduleSpec,
} from '@temporalio/client';
import type { Config } from '../config/index.js';
import { desiredSchedules, fingerprint, ownedBy, type DesiredSchedule } from '../lib/schedules.js';
import { humanTiming } from '../lib/runSummary.js';
import { ensureSearchAttributes, labelsFor, userMetadata } from './client.js';
import { UserError } from './errors.js';
import { formatDuration } from './format.js';

/** The schedule's description, or undefined when there is no such schedule (now). */
async function describeIfExists(client: Client, id: string) {
  return client.schedule
    .getHandle(id)
    .describe()
    .catch((err: unknown) => (err instanceof ScheduleNotFoundError ? undefined : Promise.reject(err)));
}

export interface ApplyReport {
  created: string[];
  updated: string[];
  unchanged: string[];
  deleted: string[];
}

function specOf(s: DesiredSchedule, config: Config): ScheduleSpec {
  const timezone = config.schedules.timeZone;
  return 'cron' in s.timing
    ? { cronExpressions: [s.timing.cron], timezone }
    : { intervals: [{ every: s.timing.every as never }], timezone };
}

async function actionOf(client: Client, s: DesiredSchedule, config: Config): Promise<ScheduleOptionsAction> {
  const labels = await labelsFor(client, s.labels);
  return {
    type: 'startWorkflow',
    workflowType: s.workflowType,
    // Temporal appends each run's scheduled time: pgwarden/main/app/full-daily-2026-11-22T02:00:00Z.
    workflowId: s.id,
    taskQueue: config.temporal.taskQueue,
    args: [s.input],
    // Whether the runs get search attributes is part of it: once the server has them, the next
    // apply adds them to schedules created before.
    // userMetadata: schedules applied before their runs had a summary are updated once.
    memo: {
      ...labels.memo,
      schedule: s.id,
      scheduleFingerprint: fingerprint(s, {
        ...settingsOf(config),
        searchAttributes: !!labels.typedSearchAttributes,
        userMetadata: true,
      }),
    },
    ...(labels.typedSearchAttributes ? { typedSearchAttributes: labels.typedSearchAttributes } : {}),
    ...userMetadata(s.labels, s.input, {
      startedBy: `schedule ${s.id} (${humanTimingOf(s, config)})`,
      note: s.description,
    }),
  };
}

const humanTimingOf = (s: DesiredSchedule, config: Config) => humanTiming(s.timing, config.schedules.timeZone);

/** The schedule's note in the UI: the job's description and when it runs. */
function noteOf(s: DesiredSchedule, config: Config): string {
  return `${s.description}, ${humanTimingOf(s, config)}`;
}

const settingsOf = (config: Config) => ({ taskQueue: config.temporal.taskQueue, ...config.schedules });

function policiesOf(config: Config): ScheduleOptions['policies'] {
  // SKIP: a backup still running at the next tick is not joined by a second one.
  return {
    overlap: ScheduleOverlapPolicy.SKIP,
    catchupWindow: config.schedules.catchupWindow as never,
    pauseOnFailure: config.schedules.pauseOnFailure,
  };
}

/** Ids of the existing schedules that belong to the configured clusters. */
export async function ownedScheduleIds(client: Client, config: Config): Promise<string[]> {
  const clusters = Object.keys(config.clusters);
  const ids: string[] = [];
  for await (const s of client.schedule.list()) if (ownedBy(s.scheduleId, clusters)) ids.push(s.scheduleId);
  return ids.sort();
}

/**
 * The schedules of the configured clusters that exist now: the configured ids (asked one by one:
 * a schedule created a moment ago may not be listed yet) and whatever else the list has.
 */
export async function existingScheduleIds(client: Client, config: Config): Promise<string[]> {
  const candidates = new Set([
    ...desiredSchedules(config).map((s) => s.id),
    ...(await ownedScheduleIds(client, config)),
  ]);
  const ids: string[] = [];
  for (const id of candidates) {
    if (await describeIfExists(client, id)) ids.push(id);
  }
  return ids.sort();
}

export async function applySchedules(
  client: Client,
  config: Config,
  options: { dryRun?: boolean } = {},
): Promise<ApplyReport> {
  const desired = desiredSchedules(config);
  if (!options.dryRun) await ensureSearchAttributes(client);
  const report: ApplyReport = { created: [], updated: [], unchanged: [], deleted: [] };
  // The list comes from the server's visibility store, which lags a create or delete by a moment:
  // whether a wanted schedule exists is asked of the schedule itself (so applying twice in a row
  // never creates twice); the list only finds stale schedules to delete.
  const listed = await ownedScheduleIds(client, config);
  for (const s of desired) {
    const action = await actionOf(client, s, config);
    const handle = client.schedule.getHandle(s.id);
    const current = await describeIfExists(client, s.id);
    if (!current) {
      if (!options.dryRun) {
        await client.schedule.create({
          scheduleId: s.id,
          spec: specOf(s, config),
          action,
          policies: policiesOf(config),
          state: { note: noteOf(s, config) },
          memo: { description: s.description, timing: humanTimingOf(s, config) },
        });
      }
      report.created.push(s.id);
      continue;
    }
    if (
      current.action.type === 'startWorkflow' &&
      current.action.memo?.scheduleFingerprint === action.memo?.scheduleFingerprint
    ) {
      report.unchanged.push(s.id);
      continue;
    }
    // The paused state and a note of the operator's are kept; pgwarden's own note (or none) says the new timing.
    if (!options.dryRun) {
      const note = (prev?: string) => (!prev || prev.startsWith(`${s.description}, `) ? noteOf(s, config) : prev);
      await handle.update((prev) => ({
        ...prev,
        spec: specOf(s, config),
        action,
        policies: policiesOf(config),
        state: { ...prev.state, note: note(prev.state.note) },
      }));
    }
    report.updated.push(s.id);
  }
  const wanted = new Set(desired.map((s) => s.id));
  for (const id of listed) {
    if (wanted.has(id)) continue;
    if (!options.dryRun) {
      const gone = await client.schedule
        .getHandle(id)
        .delete()
        .then(
          () => false,
          (err: unknown) => (err instanceof ScheduleNotFoundError ? true : Promise.reject(err)),
        );
      if (gone) continue; // deleted a moment ago, still listed
    }
    report.deleted.push(id);
  }
  return report;
}

export interface ScheduleRow {
  id: string;
  workflowType: string;
  timing: string;
  paused: boolean;
  note?: string;
  nextRuns: string[];
  lastRun?: { workflowId: string; scheduledAt: string; status: string };
}

export async function listSchedules(client: Client, config: Config): Promise<ScheduleRow[]> {
  const rows: ScheduleRow[] = [];
  // The server keeps crontab lines as calendars: show them as configured.
  const configured = new Map(desiredSchedules(config).map((s) => [s.id, s.timing]));
  for (const id of await existingScheduleIds(client, config)) {
    const d = await describeIfExists(client, id);
    if (!d) continue; // deleted a moment ago, still listed
    const last = d.info.recentActions.at(-1);
    const status =
      last?.action.type === 'startWorkflow'
        ? await client.workflow
            .getHandle(last.action.workflow.workflowId, last.action.workflow.firstExecutionRunId)
            .describe()
            .then(
              (w) => w.status.name,
              () => 'UNKNOWN',
            )
        : undefined;
    const t = configured.get(id);
    const timing = t
      ? ['cron' in t ? `${t.cron} (${config.schedules.timeZone})` : `every ${t.every}`]
      : (d.spec.intervals ?? []).map((i) => `every ${formatDuration(Number(i.every) / 1000)}`);
    rows.push({
      id,
      workflowType: d.action.type === 'startWorkflow' ? d.action.workflowType : d.action.type,
      timing: timing.length ? timing.join(', ') : describeCalendars(d.spec.calendars?.length ?? 0),
      paused: d.state.paused,
      note: d.state.note ?? undefined,
      nextRuns: d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()),
      lastRun:
        last && last.action.type === 'startWorkflow' && status
          ? { workflowId: last.action.workflow.workflowId, scheduledAt: last.scheduledAt.toISOString(), status }
          : undefined,
    });
  }
  return rows;
}

const describeCalendars = (n: number) => `${n} calendar${n === 1 ? '' : 's'}`;

/** Triggers a run now and returns its workflow id once the schedule has started it. */
export async function triggerSchedule(client: Client, id: string, timeoutMs = 30_000): Promise<string> {
  const handle = client.schedule.getHandle(id);
  const before = new Set(
    (await handle.describe()).info.recentActions.map((a) =>
      a.action.type === 'startWorkflow' ? a.action.workflow.workflowId : '',
    ),
  );
  // ALLOW_ALL: an operator's explicit trigger runs even while a scheduled run is in progress.
  await handle.trigger(ScheduleOverlapPolicy.ALLOW_ALL);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const d = await handle.describe();
    const started = d.info.recentActions
      .map((a) => (a.action.type === 'startWorkflow' ? a.action.workflow.workflowId : ''))
      .find((w) => w && !before.has(w));
    if (started) return started;
    if (Date.now() > deadline) throw new Error(`schedule ${id} did not start a run within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The handle of an existing schedule; a missing one is the caller's `notFound` error. */
export async function existingSchedule(client: Client, id: string) {
  const handle = client.schedule.getHandle(id);
  await handle.describe().catch((err: unknown) => {
    throw err instanceof ScheduleNotFoundError
      ? new UserError(`no schedule ${id} (see: pgwarden schedules list)`)
      : err;
  });
  return handle;
}

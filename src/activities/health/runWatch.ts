// healthCheck's view of Temporal: the cluster's runs that closed since the last look (failed,
// terminated and timed-out ones included: a run killed from outside cannot report itself) and its
// configured schedules (paused, missing). What each procedure's newest run was is kept in
// `<repository>/<cluster>/health-runs.json` (src/lib/runAlerts.ts decides): a repeated or retried
// check finds the same runs already recorded and changes nothing. Only this deployment's runs
// count: those on its task queue (several deployments may share a namespace).
import { readdir, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Context } from '@temporalio/activity';
import { ScheduleNotFoundError, type Client, type WorkflowExecutionInfo } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { Config } from '../../config/index.js';
import type { Alert } from '../../lib/health.js';
import {
  FAILED_STATUSES,
  FIRST_LOOK_HOURS,
  failureLine,
  labelsFromId,
  lookFrom,
  recordRuns,
  runAlerts,
  scheduleAlerts,
  variantOf,
  type ClosedRun,
  type RunWatchState,
  type ScheduleStatus,
} from '../../lib/runAlerts.js';
import { desiredSchedules } from '../../lib/schedules.js';
import { clusterKey, databaseKey, kindOfWorkflow, quote, WORKFLOW_OF_KIND } from '../../lib/visibility.js';
import { writeFileAtomic } from '../../host/atomicFile.js';
import { openRepository } from '../../storage/clusterRepository.js';

const RUNS_FILE = 'health-runs.json';

export function runStateFile(config: Config, cluster: string): string {
  return join(openRepository(config, cluster).root, cluster, RUNS_FILE);
}

const emptyState = (): RunWatchState => ({ lookedAt: null, procedures: {} });

/** What the last healthCheck recorded of the cluster's runs; empty before the first. Throws when the file cannot be read or parsed. */
async function loadRunState(file: string): Promise<RunWatchState> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) =>
    err.code === 'ENOENT' ? undefined : Promise.reject(err),
  );
  if (text === undefined) return emptyState();
  let state: RunWatchState;
  try {
    state = JSON.parse(text) as RunWatchState;
  } catch (err) {
    throw new CorruptRunState((err as Error).message);
  }
  if (typeof state !== 'object' || state === null || typeof state.procedures !== 'object' || state.procedures === null)
    throw new CorruptRunState('not a record of runs');
  return state;
}

class CorruptRunState extends Error {}

/** The recorded runs for the metrics and the all-clear lines: empty when unreadable (healthCheck alerts about that). */
export async function readRunState(config: Config, cluster: string): Promise<RunWatchState> {
  return loadRunState(runStateFile(config, cluster)).catch(emptyState);
}

/**
 * The run record, or, when its content is corrupt (truncated, not JSON), an empty one after moving
 * the file aside (kept for a look, never deleted). While a moved-aside file exists it is an alert:
 * the failures it held are no longer tracked, which is not the same as resolved. A file that
 * cannot be read at all (an I/O error) is an alert and is left alone: `readable: false`, not to be
 * written over.
 */
async function runStateOrAlert(
  file: string,
  now: Date,
): Promise<{ state: RunWatchState; alerts: Alert[]; readable: boolean }> {
  let state: RunWatchState;
  let trouble = '';
  try {
    state = await loadRunState(file);
  } catch (err) {
    if (!(err instanceof CorruptRunState)) {
      const alert = {
        key: `run-state-unreadable:${RUNS_FILE}`,
        message: `cannot read ${file}: ${failureLine(err)} (failed runs recorded there are not reported until it can be read)`,
      };
      return { state: emptyState(), alerts: [alert], readable: false };
    }
    state = emptyState();
    trouble = `: ${failureLine(err)}`;
    await rename(file, `${file}.unreadable-${now.toISOString().replace(/[-:.]/g, '')}`).catch(() => undefined);
  }
  const aside = (await readdir(dirname(file)).catch(() => [] as string[]))
    .filter((f) => f.startsWith(`${RUNS_FILE}.unreadable-`))
    .sort();
  const alerts = aside.map((f) => ({
    key: `run-state-unreadable:${f}`,
    message: `${join(dirname(file), f)}: healthCheck's record of runs could not be read${f === aside.at(-1) ? trouble : ''}; it was moved aside and runs are tracked afresh from the last ${FIRST_LOOK_HOURS} hours: failures it held are no longer tracked (not resolved). Remove the file once looked at`,
  }));
  return { state, alerts, readable: true };
}

/** The worker's client, inside an activity; undefined elsewhere (metrics, unit use). */
function activityClient(): Client | undefined {
  try {
    return Context.current().client;
  } catch {
    return undefined;
  }
}

function closedRun(w: WorkflowExecutionInfo): ClosedRun & { parentRunId?: string } {
  const kind = kindOfWorkflow(w.type)!;
  const fromId = labelsFromId(w.workflowId, kind);
  const memo = (w.memo ?? {}) as { cluster?: string; database?: string };
  return {
    workflowId: w.workflowId,
    runId: w.runId,
    type: w.type,
    status: w.status.name,
    startedAt: w.startTime.toISOString(),
    closedAt: (w.closeTime ?? w.startTime).toISOString(),
    cluster: w.typedSearchAttributes.get(clusterKey) ?? memo.cluster ?? fromId.cluster,
    database: w.typedSearchAttributes.get(databaseKey) ?? memo.database ?? fromId.database,
    ...(w.parentExecution?.runId ? { parentRunId: w.parentExecution.runId } : {}),
  };
}

/**
 * Looks at the runs closed since the last look, records them, and returns the alerts for the
 * procedures whose newest run failed and for schedules that do not run. Outside an activity (no
 * client) only the recorded failures. `heard`: the alert keys the last notification sent. A
 * record that cannot be written (a full disk) is an alert, not a failed check: the alerts still go out.
 */
export async function watchRuns(
  config: Config,
  cluster: string,
  now = new Date(),
  heard: readonly string[] = [],
): Promise<{ alerts: Alert[]; state: RunWatchState }> {
  const client = activityClient();
  const file = runStateFile(config, cluster);
  const { state: previous, alerts: stateAlerts, readable } = await runStateOrAlert(file, now);
  if (!client) return { alerts: [...runAlerts(previous), ...stateAlerts], state: previous };
  let runs: (ClosedRun & { error?: string })[] | undefined;
  let schedules: ScheduleStatus[] | undefined;
  let trouble: unknown;
  try {
    runs = await closedRuns(client, config, cluster, previous, now);
    schedules = await describeSchedules(client, config, cluster);
  } catch (err) {
    trouble = err;
  }
  const state = runs ? recordRuns(previous, cluster, runs, now, heard) : previous;
  const unwritable =
    runs && readable
      ? await writeFileAtomic(file, JSON.stringify(state) + '\n').then(
          () => [],
          (err: unknown) => [stateUnwritable(file, err)],
        )
      : [];
  const alerts = [
    ...runAlerts(state),
    ...(schedules ? scheduleAlerts(cluster, schedules, now) : []),
    ...stateAlerts,
    ...unwritable,
  ];
  // Temporal unreadable: the failures already known still fire, and this says why nothing new is known.
  if (trouble !== undefined)
    alerts.push({
      key: 'temporal-unreadable',
      message: `cluster "${cluster}": cannot ask Temporal about its runs and schedules: ${failureLine(trouble)}`,
    });
  return { alerts, state };
}

/** A state file healthCheck cannot write (a full or read-only repository): keyed by its path. */
export function stateUnwritable(file: string, err: unknown): Alert {
  return {
    key: `state-unwritable:${file}`,
    message: `cannot write ${file}: ${failureLine(err)} (healthCheck keeps alerting, but what it has seen and sent is not recorded: notifications may repeat)`,
  };
}

/** This cluster's runs on the deployment's task queue that closed since the last look (with overlap), failed ones with their error line. */
async function closedRuns(
  client: Client,
  config: Config,
  cluster: string,
  previous: RunWatchState,
  now: Date,
): Promise<(ClosedRun & { error?: string })[]> {
  const query = [
    `WorkflowType IN (${Object.values(WORKFLOW_OF_KIND).map(quote).join(', ')})`,
    `TaskQueue = ${quote(config.temporal.taskQueue)}`,
    `ExecutionStatus != 'Running'`,
    `CloseTime > ${quote(lookFrom(previous, now).toISOString())}`,
  ].join(' AND ');
  const runs: (ClosedRun & { error?: string })[] = [];
  for await (const w of client.workflow.list({ query })) {
    const run = closedRun(w);
    // Already recorded by the last look (the looks overlap): nothing to read again.
    if (Object.values(previous.procedures).some((p) => p.runId === run.runId || p.unheard?.runId === run.runId))
      continue;
    // Started without pgwarden's labels and id (`temporal workflow start --type fullBackup ...`): its input names them.
    // Offsite, retention and PITR runs: the input also says which variant (procedure) they are.
    const variantKind = ['offsite', 'retention', 'pitr'].includes(kindOfWorkflow(run.type)!);
    if ((!run.cluster || variantKind) && (!run.cluster || run.cluster === cluster)) {
      const input = await runInput(client, run);
      if (!run.cluster) Object.assign(run, inputLabels(input));
      const variant = variantOf(run.type, input);
      if (variant && input !== undefined) run.variant = variant;
    }
    if (run.cluster !== cluster) continue;
    // The error's one line, read once per failed run (the list does not carry it).
    if (FAILED_STATUSES.includes(run.status)) {
      runs.push({
        ...run,
        error: await client.workflow
          .getHandle(run.workflowId, run.runId)
          .result()
          .then(() => run.status, failureLine),
      });
    } else runs.push(run);
  }
  return runs;
}

/** A run's input (its first history event); undefined when it cannot be read. */
async function runInput(client: Client, run: ClosedRun): Promise<unknown> {
  const page = await client.workflowService
    .getWorkflowExecutionHistory({
      namespace: client.options.namespace,
      execution: { workflowId: run.workflowId, runId: run.runId },
      maximumPageSize: 1,
    })
    .catch(() => undefined);
  const payload = page?.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  try {
    return payload ? defaultPayloadConverter.fromPayload<unknown>(payload as Payload) : undefined;
  } catch {
    return undefined;
  }
}

/** Cluster and database named by a run's input. */
function inputLabels(input: unknown): { cluster?: string; database?: string } {
  const i = (input ?? {}) as { cluster?: unknown; database?: unknown };
  return {
    ...(typeof i.cluster === 'string' ? { cluster: i.cluster } : {}),
    ...(typeof i.database === 'string' ? { database: i.database } : {}),
  };
}

async function describeSchedules(client: Client, config: Config, cluster: string): Promise<ScheduleStatus[]> {
  const out: ScheduleStatus[] = [];
  for (const s of desiredSchedules(config).filter((d) => d.labels.cluster === cluster)) {
    const d = await client.schedule
      .getHandle(s.id)
      .describe()
      .catch((err: unknown) => (err instanceof ScheduleNotFoundError ? undefined : Promise.reject(err)));
    if (!d) {
      out.push({ id: s.id, exists: false });
      continue;
    }
    const [next, after] = d.info.nextActionTimes;
    out.push({
      id: s.id,
      exists: true,
      paused: d.state.paused,
      ...(d.state.note ? { note: d.state.note } : {}),
      createdAt: d.info.createdAt.toISOString(),
      ...(d.info.recentActions.length ? { lastActionAt: d.info.recentActions.at(-1)!.takenAt.toISOString() } : {}),
      ...(next && after ? { periodMs: after.getTime() - next.getTime() } : {}),
      ...(d.info.runningActions.length ? { running: d.info.runningActions[0]!.workflow.workflowId } : {}),
    });
  }
  return out;
}

// healthCheck's view of Temporal: the cluster's runs that closed since the last look (failed,
// terminated and timed-out ones included: a run killed from outside cannot report itself) and its
// configured schedules (paused, missing). What each procedure's newest run was is kept in
// `<repository>/<cluster>/health-runs.json` (src/lib/runAlerts.ts decides): a repeated or retried
// check finds the same runs already recorded and changes nothing. Only this deployment's runs
// count: those on its task queue (several deployments may share a namespace).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { ScheduleNotFoundError, type Client, type WorkflowExecutionInfo } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { Config } from '../config/index.js';
import type { Alert } from '../lib/health.js';
import { FAILED_STATUSES, failureLine, labelsFromId, lookFrom, recordRuns, runAlerts, scheduleAlerts, type ClosedRun, type RunWatchState, type ScheduleStatus } from '../lib/runAlerts.js';
import { desiredSchedules } from '../lib/schedules.js';
import { clusterKey, databaseKey, kindOfWorkflow, quote, WORKFLOW_OF_KIND } from '../lib/visibility.js';
import { writeFileAtomic } from './atomicFile.js';
import { LocalRepository } from './repository.js';

const RUNS_FILE = 'health-runs.json';

export function runStateFile(config: Config, cluster: string): string {
  return join(LocalRepository.forCluster(config, cluster).root, cluster, RUNS_FILE);
}

/** What the last healthCheck recorded of the cluster's runs; empty before the first. */
export async function readRunState(config: Config, cluster: string): Promise<RunWatchState> {
  return readFile(runStateFile(config, cluster), 'utf8').then((t) => JSON.parse(t) as RunWatchState, () => ({ lookedAt: null, procedures: {} }));
}

/** The worker's client, inside an activity; undefined elsewhere (metrics, unit use). */
function activityClient(): Client | undefined {
  try {
    return Context.current().client;
  } catch {
    return undefined;
  }
}

function closedRun(w: WorkflowExecutionInfo): ClosedRun {
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
  };
}

/**
 * Looks at the runs closed since the last look, records them, and returns the alerts for the
 * procedures whose newest run failed and for schedules that do not run. Outside an activity (no
 * client) only the recorded failures.
 */
export async function watchRuns(config: Config, cluster: string, now = new Date()): Promise<{ alerts: Alert[]; state: RunWatchState }> {
  const client = activityClient();
  const previous = await readRunState(config, cluster);
  if (!client) return { alerts: runAlerts(previous), state: previous };
  let runs: (ClosedRun & { error?: string })[] | undefined;
  let schedules: ScheduleStatus[] | undefined;
  let trouble: unknown;
  try {
    runs = await closedRuns(client, config, cluster, previous, now);
    schedules = await describeSchedules(client, config, cluster);
  } catch (err) {
    trouble = err;
  }
  const state = runs ? recordRuns(previous, cluster, runs, now) : previous;
  if (runs) await writeFileAtomic(runStateFile(config, cluster), JSON.stringify(state) + '\n');
  const alerts = [...runAlerts(state), ...(schedules ? scheduleAlerts(cluster, schedules, now) : [])];
  // Temporal unreadable: the failures already known still fire, and this says why nothing new is known.
  if (trouble !== undefined) alerts.push({ key: 'temporal-unreadable', message: `cluster "${cluster}": cannot ask Temporal about its runs and schedules: ${failureLine(trouble)}` });
  return { alerts, state };
}

/** This cluster's runs on the deployment's task queue that closed since the last look (with overlap), failed ones with their error line. */
async function closedRuns(client: Client, config: Config, cluster: string, previous: RunWatchState, now: Date): Promise<(ClosedRun & { error?: string })[]> {
  const query = [
    `WorkflowType IN (${Object.values(WORKFLOW_OF_KIND).map(quote).join(', ')})`,
    `TaskQueue = ${quote(config.temporal.taskQueue)}`,
    `ExecutionStatus != 'Running'`,
    `CloseTime > ${quote(lookFrom(previous, now).toISOString())}`,
  ].join(' AND ');
  const runs: (ClosedRun & { error?: string })[] = [];
  for await (const w of client.workflow.list({ query })) {
    const run = closedRun(w);
    // Started without pgwarden's labels and id (`temporal workflow start --type fullBackup ...`): its input names them.
    if (!run.cluster) Object.assign(run, await inputLabels(client, run));
    if (run.cluster !== cluster) continue;
    const known = Object.values(previous.procedures).some((p) => p.runId === run.runId);
    // The error's one line, read once per failed run (the list does not carry it).
    if (FAILED_STATUSES.includes(run.status) && !known) {
      runs.push({ ...run, error: await client.workflow.getHandle(run.workflowId, run.runId).result().then(() => run.status, failureLine) });
    } else runs.push(run);
  }
  return runs;
}

/** Cluster and database from a run's input (its first history event); nothing when it cannot be read. */
async function inputLabels(client: Client, run: ClosedRun): Promise<{ cluster?: string; database?: string }> {
  const page = await client.workflowService
    .getWorkflowExecutionHistory({ namespace: client.options.namespace, execution: { workflowId: run.workflowId, runId: run.runId }, maximumPageSize: 1 })
    .catch(() => undefined);
  const payload = page?.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  try {
    const input = payload ? defaultPayloadConverter.fromPayload<{ cluster?: unknown; database?: unknown }>(payload as Payload) : undefined;
    return { ...(typeof input?.cluster === 'string' ? { cluster: input.cluster } : {}), ...(typeof input?.database === 'string' ? { database: input.database } : {}) };
  } catch {
    return {};
  }
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

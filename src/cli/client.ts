// Temporal client plumbing shared by the CLI commands, the schedules and the demo.
import { createConnection } from 'node:net';
import { Client, Connection, type WorkflowHandle, type WorkflowStartOptions } from '@temporalio/client';
import { defaultPayloadConverter, type SearchAttributePair } from '@temporalio/common';
import type { Config } from '../config/index.js';
import { temporalUnreachableLine } from '../lib/temporalUnreachable.js';
import { runDetails, runSummary, type RunOrigin } from '../lib/runSummary.js';
import {
  memoOf,
  SEARCH_ATTRIBUTE_NAMES,
  searchAttributesOf,
  searchAttributesRegisteredIn,
  WORKFLOW_OF_KIND,
  type RunLabels,
} from '../lib/visibility.js';
import type { Progress } from '../workflows/messages.js';

export async function connectClient(config: Config): Promise<Client> {
  const connection = await Connection.connect({ address: config.temporal.address, connectTimeout: 5000 }).catch(
    async (err: Error) => {
      // The client says only "Failed to connect before the deadline": a TCP probe tells why.
      throw new Error(
        temporalUnreachableLine(config.temporal.address, (await probeTcp(config.temporal.address)) ?? err.message),
      );
    },
  );
  return new Client({ connection, namespace: config.temporal.namespace });
}

/** Why a TCP connection to `host:port` fails (the socket error's code), or undefined when it connects. */
export function probeTcp(address: string, timeoutMs = 2000): Promise<string | undefined> {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(address);
  if (!m) return Promise.resolve('invalid socket address');
  return new Promise((resolve) => {
    const socket = createConnection({ host: m[1]!, port: Number(m[2]) });
    const done = (why: string | undefined) => {
      socket.destroy();
      resolve(why);
    };
    socket.setTimeout(timeoutMs, () => done('ETIMEDOUT'));
    socket.once('connect', () => done(undefined));
    socket.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

const KEYWORD = 2; // temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
const registered = new WeakMap<Client, Promise<boolean>>();

/** Whether the namespace has pgwarden's search attributes (asked once per client). */
export function hasSearchAttributes(client: Client): Promise<boolean> {
  let known = registered.get(client);
  if (!known) {
    known = searchAttributesRegisteredIn(client).catch(() => false);
    registered.set(client, known);
  }
  return known;
}

/**
 * Registers pgwarden's search attributes where they are missing. Self-hosted servers and the dev
 * server allow it; where the operator API is refused (Temporal Cloud: add them in its UI), runs
 * carry the memo alone. Returns whether the attributes are there afterwards.
 */
export async function ensureSearchAttributes(client: Client): Promise<boolean> {
  if (await hasSearchAttributes(client)) return true;
  const ok = await client.connection.operatorService
    .addSearchAttributes({
      namespace: client.options.namespace,
      searchAttributes: Object.fromEntries(SEARCH_ATTRIBUTE_NAMES.map((n) => [n, KEYWORD])),
    })
    .then(() => true)
    .catch((err: Error) => (/already exists/i.test(err.message) ? true : false));
  registered.set(client, Promise.resolve(ok));
  return ok;
}

/** Memo and, when the namespace has them, search attributes for a run. */
export async function labelsFor(
  client: Client,
  labels: RunLabels,
): Promise<{ memo: Record<string, string>; typedSearchAttributes?: SearchAttributePair[] }> {
  return {
    memo: memoOf(labels),
    ...((await hasSearchAttributes(client)) ? { typedSearchAttributes: searchAttributesOf(labels) } : {}),
  };
}

/** What the Temporal UI shows at the top of a run: a one-line summary and the input in readable form. */
export function userMetadata(
  labels: RunLabels,
  input: unknown,
  origin: RunOrigin,
): { staticSummary: string; staticDetails: string } {
  const fields = input && typeof input === 'object' ? (input as Record<string, unknown>) : {};
  return { staticSummary: runSummary(labels.kind, fields), staticDetails: runDetails(labels.kind, fields, origin) };
}

/** Starts a pgwarden workflow with its labels and summary, on the config's shared queue. */
export async function startRun(
  client: Client,
  config: Config,
  labels: RunLabels,
  options: { workflowId: string; args: unknown[]; origin?: RunOrigin },
): Promise<WorkflowHandle> {
  const start: WorkflowStartOptions = {
    taskQueue: config.temporal.taskQueue,
    workflowId: options.workflowId,
    args: options.args,
    ...(await labelsFor(client, labels)),
    ...userMetadata(labels, options.args[0], options.origin ?? { startedBy: 'the pgwarden CLI' }),
  };
  return client.workflow.start(WORKFLOW_OF_KIND[labels.kind], start);
}

/** A pending activity of a run, as `describe` reports it. */
export interface ActivityStatus {
  activityId: string;
  type: string;
  state: 'scheduled' | 'started' | 'cancel-requested' | 'unknown';
  attempt: number;
  /** Its newest heartbeat details (phase, bytes, ...), if it sent any. */
  heartbeat?: Record<string, unknown>;
  heartbeatAt?: Date;
  /** When the current attempt started. */
  startedAt?: Date;
  /** Why the previous attempt failed, when it is a retry. */
  lastFailure?: string;
}

export interface LiveStatus {
  /** The `progress` query's answer; undefined when no worker answered in time. */
  progress?: Progress;
  /** The newest heartbeat of a running activity (phase, bytes), if any. */
  heartbeat?: Record<string, unknown>;
  /** Temporal's status name: RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT, ... */
  status: string;
  workflowType?: string;
  startTime?: Date;
  closeTime?: Date;
  /** The pending activities, in the order the server lists them. */
  activities?: ActivityStatus[];
  /** Child workflows running for this one (fullBackup of "*": one per database; verify). */
  children?: { workflowId: string; workflowType: string }[];
  /** pgwarden's labels (cluster, database, kind) from the memo. */
  memo?: Record<string, unknown>;
  taskQueue?: string;
  /** The `progress` query got no answer within the timeout (no worker polls the queue). */
  queryUnanswered?: boolean;
  /** Why the `progress` query failed otherwise (the run has no such query, its task fails). */
  queryError?: string;
}

export interface LiveStatusOptions {
  /** How long the `progress` query may take (it waits for a worker); default 5 s. */
  queryTimeoutMs?: number;
}

type Timestamp = { seconds?: { toString(): string } | number | null; nanos?: number | null } | null | undefined;
const dateOf = (ts: Timestamp): Date | undefined =>
  ts?.seconds == null ? undefined : new Date(Number(ts.seconds.toString()) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6));
const ACTIVITY_STATE: Record<number, ActivityStatus['state']> = { 1: 'scheduled', 2: 'started', 3: 'cancel-requested' };

/**
 * Describes a run and asks its `progress` query. The query needs a worker: without one it gives up
 * after `queryTimeoutMs` and leaves `progress` undefined. A run that does not exist throws
 * Temporal's WorkflowNotFoundError.
 */
export async function liveStatus(handle: WorkflowHandle, options: LiveStatusOptions = {}): Promise<LiveStatus> {
  const description = await handle.describe();
  const deadline = Date.now() + (options.queryTimeoutMs ?? 5000);
  let queryUnanswered = false;
  let queryError: string | undefined;
  const progress = await handle.client.connection
    .withDeadline(deadline, () => handle.query<Progress>('progress'))
    .catch((err: Error) => {
      queryUnanswered = Date.now() >= deadline;
      if (!queryUnanswered) queryError = err.message;
      return undefined;
    });
  let heartbeat: Record<string, unknown> | undefined;
  const activities: ActivityStatus[] = [];
  for (const activity of description.raw.pendingActivities ?? []) {
    const payload = activity.heartbeatDetails?.payloads?.[0];
    let details: Record<string, unknown> | undefined;
    if (payload) {
      try {
        details = defaultPayloadConverter.fromPayload(payload as never);
      } catch {
        details = undefined;
      }
    }
    if (details) heartbeat = details;
    activities.push({
      activityId: activity.activityId ?? '',
      type: activity.activityType?.name ?? 'activity',
      state: ACTIVITY_STATE[activity.state ?? 0] ?? 'unknown',
      attempt: activity.attempt ?? 1,
      heartbeat: details,
      heartbeatAt: dateOf(activity.lastHeartbeatTime as Timestamp),
      startedAt: dateOf(activity.lastStartedTime as Timestamp),
      lastFailure: activity.lastFailure?.message ?? undefined,
    });
  }
  return {
    progress,
    heartbeat,
    status: description.status.name,
    workflowType: description.type,
    startTime: description.startTime,
    closeTime: description.closeTime,
    activities,
    children: (description.raw.pendingChildren ?? []).map((c) => ({
      workflowId: c.workflowId ?? '',
      workflowType: c.workflowTypeName ?? 'workflow',
    })),
    memo: description.memo,
    taskQueue: description.taskQueue,
    queryUnanswered,
    queryError,
  };
}

// Temporal client plumbing shared by the CLI commands, the schedules and the demo.
import { Client, Connection, type WorkflowHandle, type WorkflowStartOptions } from '@temporalio/client';
import { defaultPayloadConverter, type SearchAttributePair } from '@temporalio/common';
import type { Config } from '../config/index.js';
import { memoOf, SEARCH_ATTRIBUTE_NAMES, searchAttributesOf, WORKFLOW_OF_KIND, type RunLabels } from '../lib/visibility.js';
import type { Progress } from '../workflows/messages.js';

export async function connectClient(config: Config): Promise<Client> {
  const connection = await Connection.connect({ address: config.temporal.address, connectTimeout: 5000 }).catch((err: Error) => {
    throw new Error(`cannot reach Temporal at ${config.temporal.address}: ${err.message}`);
  });
  return new Client({ connection, namespace: config.temporal.namespace });
}

const KEYWORD = 2; // temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
const registered = new WeakMap<Client, Promise<boolean>>();

/** Whether the namespace has pgwarden's search attributes (asked once per client). */
export function hasSearchAttributes(client: Client): Promise<boolean> {
  let known = registered.get(client);
  if (!known) {
    known = client.connection.operatorService
      .listSearchAttributes({ namespace: client.options.namespace })
      .then((r) => SEARCH_ATTRIBUTE_NAMES.every((n) => n in (r.customAttributes ?? {})))
      .catch(() => false);
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
    .addSearchAttributes({ namespace: client.options.namespace, searchAttributes: Object.fromEntries(SEARCH_ATTRIBUTE_NAMES.map((n) => [n, KEYWORD])) })
    .then(() => true)
    .catch((err: Error) => (/already exists/i.test(err.message) ? true : false));
  registered.set(client, Promise.resolve(ok));
  return ok;
}

/** Memo and, when the namespace has them, search attributes for a run. */
export async function labelsFor(client: Client, labels: RunLabels): Promise<{ memo: Record<string, string>; typedSearchAttributes?: SearchAttributePair[] }> {
  return { memo: memoOf(labels), ...((await hasSearchAttributes(client)) ? { typedSearchAttributes: searchAttributesOf(labels) } : {}) };
}

/** Starts a pgwarden workflow with its labels, on the config's shared queue. */
export async function startRun(
  client: Client,
  config: Config,
  labels: RunLabels,
  options: { workflowId: string; args: unknown[] },
): Promise<WorkflowHandle> {
  const start: WorkflowStartOptions = { taskQueue: config.temporal.taskQueue, workflowId: options.workflowId, args: options.args, ...(await labelsFor(client, labels)) };
  return client.workflow.start(WORKFLOW_OF_KIND[labels.kind], start);
}

export interface LiveStatus {
  progress?: Progress;
  /** The newest heartbeat of a running activity (phase, bytes), if any. */
  heartbeat?: Record<string, unknown>;
  status: string;
  workflowType?: string;
  startTime?: Date;
  closeTime?: Date;
}

export async function liveStatus(handle: WorkflowHandle): Promise<LiveStatus> {
  const description = await handle.describe();
  const progress = await handle.query<Progress>('progress').catch(() => undefined);
  let heartbeat: Record<string, unknown> | undefined;
  for (const activity of description.raw.pendingActivities ?? []) {
    const payload = activity.heartbeatDetails?.payloads?.[0];
    if (payload) heartbeat = defaultPayloadConverter.fromPayload(payload as never);
  }
  return { progress, heartbeat, status: description.status.name, workflowType: description.type, startTime: description.startTime, closeTime: description.closeTime };
}

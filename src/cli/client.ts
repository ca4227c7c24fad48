// Temporal client plumbing shared by the CLI commands.
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Config } from '../config/index.js';
import type { Progress } from '../workflows/messages.js';

export async function connectClient(config: Config): Promise<Client> {
  const connection = await Connection.connect({ address: config.temporal.address, connectTimeout: 5000 }).catch((err: Error) => {
    throw new Error(`cannot reach Temporal at ${config.temporal.address}: ${err.message}`);
  });
  return new Client({ connection, namespace: config.temporal.namespace });
}

export interface LiveStatus {
  progress?: Progress;
  /** The newest heartbeat of a running activity (phase, bytes), if any. */
  heartbeat?: Record<string, unknown>;
  status: string;
}

export async function liveStatus(handle: WorkflowHandle): Promise<LiveStatus> {
  const description = await handle.describe();
  const progress = await handle.query<Progress>('progress').catch(() => undefined);
  let heartbeat: Record<string, unknown> | undefined;
  for (const activity of description.raw.pendingActivities ?? []) {
    const payload = activity.heartbeatDetails?.payloads?.[0];
    if (payload) heartbeat = defaultPayloadConverter.fromPayload(payload as never);
  }
  return { progress, heartbeat, status: description.status.name };
}

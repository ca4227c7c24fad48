// Reading a finished (or failed) workflow run from a test: its failure's innermost type and message,
// the activities it scheduled, and what one of them returned.
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { expect } from 'vitest';

/** The run's failure, down to its root cause (an activity's ApplicationFailure). */
export async function runFailure(handle: WorkflowHandle): Promise<{ type?: string; message: string }> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause = (err as WorkflowFailedError).cause as (Error & { type?: string; cause?: Error }) | undefined;
  while (cause?.cause) cause = cause.cause as Error & { type?: string; cause?: Error };
  return { type: cause?.type, message: cause?.message ?? '' };
}

/** Activity types the run scheduled, in order (retries are one entry). */
export async function scheduledActivities(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? [])
    .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
    .filter((n): n is string => !!n);
}

/** The decoded result of the run's last completed activity of a type. */
export async function activityResult<T>(handle: WorkflowHandle, type: string): Promise<T | undefined> {
  const events = (await handle.fetchHistory()).events ?? [];
  const ids = new Set(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type)
      .map((e) => String(e.eventId)),
  );
  const done = events.filter((e) => ids.has(String(e.activityTaskCompletedEventAttributes?.scheduledEventId))).at(-1);
  const data = done?.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data;
  return data ? (JSON.parse(Buffer.from(data).toString('utf8')) as T) : undefined;
}

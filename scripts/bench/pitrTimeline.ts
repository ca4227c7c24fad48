// Where a pointInTimeRecovery run's time went, from its history: each activity's start and end in
// seconds since the run started (the steps' own timings cannot show what ran side by side, such as a
// rehearsal's WAL staging beside its base backup's unpacking and its recovery).
import type { temporal } from '@temporalio/proto';

type Event = temporal.api.history.v1.IHistoryEvent;

const seconds = (t: Event['eventTime']) => Number(t?.seconds ?? 0) + (t?.nanos ?? 0) / 1e9;

/** "stageWal 0.21–1.95, stageBaseBackup 0.21–1.62, …" for the activities of one run. */
export function activityTimeline(events: Event[]): string {
  const t0 = seconds(events[0]?.eventTime);
  const scheduled = new Map<string, string>();
  const started = new Map<string, number>();
  const parts: string[] = [];
  for (const e of events) {
    const id = String(e.eventId);
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(id, s.activityType?.name ?? '?');
    const st = e.activityTaskStartedEventAttributes;
    if (st) started.set(String(st.scheduledEventId), seconds(e.eventTime) - t0);
    const done =
      e.activityTaskCompletedEventAttributes ??
      e.activityTaskFailedEventAttributes ??
      e.activityTaskCanceledEventAttributes ??
      e.activityTaskTimedOutEventAttributes;
    if (done) {
      const key = String(done.scheduledEventId);
      // Started events of retried activities are written with their completion: the start then is unknown.
      const from = started.get(key);
      parts.push(
        `${scheduled.get(key)} ${from === undefined ? '?' : from.toFixed(2)}–${(seconds(e.eventTime) - t0).toFixed(2)}`,
      );
    }
  }
  return parts.join(', ');
}

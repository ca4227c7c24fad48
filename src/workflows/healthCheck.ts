// healthCheck: the monitoring runbook (check-backups.sh) every 15 minutes. collect (backups and
// their age, verified restores, archiver, WAL archive, repository disk, offsite drift, the runs
// that failed since the last check, schedules that do not run) → evaluate against the thresholds
// → notify when the alerts changed or are due again. It completes either way: the
// alerts are its result, and the notification is how they reach a human.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities, HealthNotification } from '../activities/index.js';
import type { Alert, HealthSnapshot } from '../lib/health.js';
import { QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { showingFailure, showOutcome, trackProgress } from './messages.js';
import { clipText, stepSummary } from '../lib/runSummary.js';
import { selfLabels } from './selfLabels.js';

export interface HealthCheckInput {
  cluster: string;
}

export interface HealthCheckResult {
  cluster: string;
  healthy: boolean;
  alerts: Alert[];
  snapshot: HealthSnapshot;
  notification: HealthNotification;
}

const { checkHealth, notifyHealth } = proxyActivities<Activities>(QUICK_ACTIVITY);

/** The run's current details end with its outcome: healthy, or the alerts and whether they were sent. */
export async function healthCheck(input: HealthCheckInput): Promise<HealthCheckResult> {
  return showingFailure(async () => {
    const r = await check(input);
    const n = r.notification;
    const told = n.error
      ? `; notifying failed: ${n.error}`
      : n.sent
        ? `; sent ${n.sent === 'alert' ? 'the alerts' : 'all clear'}`
        : '';
    showOutcome(
      clipText(
        `${r.healthy ? `${r.cluster} is healthy` : `${r.alerts.length} alerts on ${r.cluster}: ${r.alerts.map((a) => a.message).join('; ')}`}${told}`,
      ),
    );
    return r;
  });
}

async function check(input: HealthCheckInput): Promise<HealthCheckResult> {
  const step = trackProgress('check');
  await selfLabels('health', input);
  const { snapshot, alerts } = await checkHealth.executeWithOptions(
    {
      summary: stepSummary(
        `check ${input.cluster}'s backups, verified restores, WAL archive, disk, offsite copies and failed runs`,
      ),
    },
    [{ cluster: input.cluster }],
  );
  step('notify', alerts.length ? `${alerts.length} alerts` : 'healthy');
  // Channels that stay down after the retries do not fail the check: its result still holds the
  // alerts, and the next check notifies again (nothing was recorded as sent).
  const notify = stepSummary(
    `notify the operators if ${input.cluster}'s alerts changed or are due again (${alerts.length ? `${alerts.length} alerts` : 'healthy'})`,
  );
  const notification: HealthNotification = await notifyHealth
    .executeWithOptions({ summary: notify }, [{ cluster: input.cluster, alerts, at: snapshot.at }])
    .catch((err: Error) => ({
      error: err.cause instanceof Error ? err.cause.message : err.message,
    }));
  step('done');
  return { cluster: input.cluster, healthy: alerts.length === 0, alerts, snapshot, notification };
}

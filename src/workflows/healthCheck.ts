// healthCheck: the monitoring runbook (check-backups.sh) every 15 minutes. collect (backups and
// their age, verified restores, archiver, WAL archive, repository disk, offsite drift, the runs
// that failed since the last check, schedules that do not run) → evaluate against the thresholds
// → notify when the alerts changed or are due again. It completes either way: the
// alerts are its result, and the notification is how they reach a human.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities, HealthNotification } from '../activities/index.js';
import type { Alert, HealthSnapshot } from '../lib/health.js';
import { QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { trackProgress } from './messages.js';
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

export async function healthCheck(input: HealthCheckInput): Promise<HealthCheckResult> {
  const step = trackProgress('check');
  await selfLabels('health', input);
  const { snapshot, alerts } = await checkHealth({ cluster: input.cluster });
  step('notify', alerts.length ? `${alerts.length} alerts` : 'healthy');
  // Channels that stay down after the retries do not fail the check: its result still holds the
  // alerts, and the next check notifies again (nothing was recorded as sent).
  const notification: HealthNotification = await notifyHealth({ cluster: input.cluster, alerts, at: snapshot.at }).catch((err: Error) => ({
    error: err.cause instanceof Error ? err.cause.message : err.message,
  }));
  step('done');
  return { cluster: input.cluster, healthy: alerts.length === 0, alerts, snapshot, notification };
}

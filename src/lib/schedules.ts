// The Temporal Schedules that replace crontab: which jobs each configured cluster gets, when, and
// with what input. Pure (not for workflows: it hashes with node:crypto): `pgwarden schedules apply`
// turns this list into Schedules.
import { createHash } from 'node:crypto';
import type { Config, JobTiming } from '../config/index.js';
import { offsiteNames } from './offsiteNames.js';
import { WORKFLOW_OF_KIND, type RunKind, type RunLabels } from './visibility.js';

/** Job names (public: they end every schedule id, and `clusters.<c>.schedules` keys them). */
export const JOBS = {
  'full-daily': { kind: 'full', timing: { cron: '0 2 * * *' }, perDatabase: true, what: 'logical backup (pg_dump)' },
  'wal-maintenance': {
    kind: 'wal-maintenance',
    timing: { cron: '0 3 * * *' },
    what: 'archiver health, WAL retention, archive size',
  },
  'verify-daily': {
    kind: 'verify',
    timing: { cron: '0 4 * * *' },
    perDatabase: true,
    what: 'verify-by-restore of the newest backup',
  },
  'offsite-daily': {
    kind: 'offsite',
    timing: { cron: '0 5 * * *' },
    offsite: true,
    what: 'offsite sync, remote retention, full remote check',
  },
  'offsite-wal': { kind: 'offsite', timing: { every: '6 hours' }, offsite: true, what: 'ship the WAL archive offsite' },
  'base-weekly': { kind: 'base', timing: { cron: '0 3 * * 0' }, what: 'physical base backup (pg_basebackup)' },
  'pitr-rehearsal-weekly': {
    kind: 'pitr',
    timing: { cron: '0 6 * * 0' },
    what: 'point-in-time recovery drill on a scratch copy',
  },
  health: { kind: 'health', timing: { every: '15 minutes' }, what: 'health check: alerts and notifications' },
} as const satisfies Record<
  string,
  { kind: RunKind; timing: JobTiming; what: string; perDatabase?: boolean; offsite?: boolean }
>;
export type JobName = keyof typeof JOBS;
export const JOB_NAMES = Object.keys(JOBS) as JobName[];

export interface DesiredSchedule {
  /** `pgwarden/main/app/full-daily`, `pgwarden/main/base-weekly`; also the id its runs start from. */
  id: string;
  job: JobName;
  workflowType: string;
  input: Record<string, unknown>;
  labels: RunLabels;
  timing: JobTiming;
  description: string;
}

const EVERY = /^\d+\s*(s|m|h|d|secs?|seconds?|mins?|minutes?|hrs?|hours?|days?)$/i;

/** Every schedule the config asks for, in a stable order. Throws a clear message for a bad config. */
export function desiredSchedules(config: Config): DesiredSchedule[] {
  const out: DesiredSchedule[] = [];
  for (const [cluster, c] of Object.entries(config.clusters)) {
    for (const key of Object.keys(c.schedules)) {
      if (!(key in JOBS))
        throw new Error(`clusters.${cluster}.schedules: unknown job "${key}" (jobs: ${JOB_NAMES.join(', ')})`);
    }
    const hasOffsite = offsiteNames(config, cluster).length > 0;
    for (const job of JOB_NAMES) {
      const spec = JOBS[job];
      const override = c.schedules[job];
      if (override === false) continue;
      if ('offsite' in spec && !hasOffsite) continue;
      const timing: JobTiming = override ?? spec.timing;
      if ('every' in timing && !EVERY.test(timing.every.trim())) {
        throw new Error(
          `clusters.${cluster}.schedules.${job}: "every" must be like "6 hours" or "15 minutes", not "${timing.every}"`,
        );
      }
      // Without `databases`, the nightly backup takes "*" and the verification checks each database it took.
      const databases: (string | undefined)[] = 'perDatabase' in spec ? (c.databases ?? ['*']) : [undefined];
      for (const database of databases) {
        const input = jobInput(job, cluster, database);
        const scope = database === undefined ? cluster : `${cluster}/${database === '*' ? 'all' : database}`;
        out.push({
          id: `pgwarden/${scope}/${job}`,
          job,
          workflowType: WORKFLOW_OF_KIND[spec.kind],
          input,
          labels: { cluster, database, kind: spec.kind },
          timing,
          description: `${spec.what} of ${database === '*' ? `every database of ${cluster}` : scope}`,
        });
      }
    }
  }
  return out;
}

function jobInput(job: JobName, cluster: string, database: string | undefined): Record<string, unknown> {
  switch (job) {
    case 'full-daily':
    case 'verify-daily':
      return { cluster, database };
    case 'offsite-wal':
      return { cluster, walOnly: true };
    case 'pitr-rehearsal-weekly':
      return { cluster, target: { latest: true }, mode: 'rehearsal' };
    default:
      return { cluster };
  }
}

/** Whether a schedule id belongs to one of these clusters (`schedules apply` removes only those it no longer wants). */
export function ownedBy(scheduleId: string, clusters: readonly string[]): boolean {
  const [root, cluster] = scheduleId.split('/');
  return root === 'pgwarden' && cluster !== undefined && clusters.includes(cluster);
}

/** A short fingerprint of what a schedule should do, kept in its action's memo to tell "unchanged" from "updated". */
export function fingerprint(
  schedule: DesiredSchedule,
  settings: {
    taskQueue: string;
    timeZone: string;
    catchupWindow: string;
    pauseOnFailure: boolean;
    searchAttributes?: boolean;
    userMetadata?: boolean;
  },
): string {
  return createHash('sha256')
    .update(JSON.stringify([schedule.workflowType, schedule.input, schedule.timing, settings]))
    .digest('hex')
    .slice(0, 16);
}

// What the Temporal UI shows at the top of a run (its static summary and details) and beside a
// schedule (its note): the cluster, database, kind and target in words, and the input in readable
// form. Pure: used by the CLI, the schedules and the workflows that start children.
import { describeTarget, type RecoveryTarget } from './recovery.js';
import type { RunKind } from './visibility.js';

type Input = Record<string, unknown>;

const scopeOf = (cluster: unknown, database: unknown) =>
  typeof database === 'string' && database ? `${cluster}/${database}` : `${cluster}`;

/**
 * Temporal refuses a start whose summary is over 400 bytes (details: 20 KB), the stored JSON
 * included: a restore of many tables must still start. Clipped on a character boundary, marked.
 */
export const SUMMARY_MAX_BYTES = 300;
export const DETAILS_MAX_BYTES = 16_000;
export function clipText(text: string, maxBytes: number = SUMMARY_MAX_BYTES): string {
  // UTF-8 length by hand: this runs in workflow code too, which has no Buffer.
  const bytesOf = (ch: string) => {
    const c = ch.codePointAt(0)!;
    return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  };
  let total = 0;
  for (const ch of text) total += bytesOf(ch);
  if (total <= maxBytes) return text;
  let out = '';
  let used = 0;
  for (const ch of text) {
    if (used + bytesOf(ch) > maxBytes - 4) break; // room for " …"
    out += ch;
    used += bytesOf(ch);
  }
  return `${out} …`;
}

/** An activity's summary in the UI's timeline (one runbook step): under 200 bytes however long its lists. */
export function stepSummary(text: string): string {
  return clipText(text, 200);
}

/** One line naming what the run does: "PITR of main to 2026-11-22 14:31:00+00, in place". */
export function runSummary(kind: RunKind, input: Input): string {
  return clipText(summaryOf(kind, input));
}

function summaryOf(kind: RunKind, input: Input): string {
  const { cluster, database } = input;
  const scope = scopeOf(cluster, database);
  switch (kind) {
    case 'full':
      return `${database === '*' ? `Logical backup of every database of ${cluster}` : `Logical backup of ${scope}`}${input.verify ? ', then verify-by-restore' : ''}`;
    case 'base':
      return `Physical base backup of ${cluster}`;
    case 'verify':
      return input.backupId ? `Verify backup ${input.backupId} of ${scope}` : `Verify newest backup of ${scope}`;
    case 'restore': {
      const from = input.backupId ? `backup ${input.backupId}` : 'the newest backup';
      const tables = Array.isArray(input.tables) && input.tables.length ? input.tables : undefined;
      return tables
        ? `Restore tables ${tables.join(', ')} of ${scope} from ${from} into a copy`
        : `Restore of ${scope} from ${from}, in place (waits for approval)`;
    }
    case 'pitr': {
      const target = input.target as RecoveryTarget | undefined;
      const to =
        !target || typeof target !== 'object'
          ? 'an unnamed target'
          : 'time' in target
            ? String(target.time)
            : 'latest' in target
              ? 'latest'
              : describeTarget(target);
      return `PITR of ${cluster} to ${to}, ${input.mode === 'rehearsal' ? 'rehearsal on a scratch copy' : 'in place (waits for approval)'}`;
    }
    case 'offsite': {
      const what = input.checkOnly ? 'Offsite check' : input.walOnly ? 'Offsite WAL shipping' : 'Offsite sync';
      const to =
        Array.isArray(input.repositories) && input.repositories.length ? ` to ${input.repositories.join(', ')}` : '';
      return `${what} of ${cluster}${to}`;
    }
    case 'wal-maintenance':
      return `WAL maintenance of ${cluster}${input.dryRun ? ' (dry run)' : ''}`;
    case 'health':
      return `Health check of ${cluster}`;
    case 'retention':
      return `Retention of ${scope}${input.apply ? ', deleting what the policy lets go' : ' (plan only)'}`;
    case 'standby':
      return `Standby ${value(input.standby)} of ${cluster} from ${input.backupId ? `base backup ${value(input.backupId)}` : 'the newest base backup'}`;
    case 'promote':
      return `Promotion of standby ${value(input.standby)} of ${cluster} to primary (waits for approval)`;
  }
}

/** Where a run came from, for its details: "the pgwarden CLI", a schedule, a parent run. */
export interface RunOrigin {
  /** e.g. "pgwarden CLI", "schedule pgwarden/main/all/full-daily (every day at 02:00 UTC)". */
  startedBy: string;
  /** A line more (the schedule's description). */
  note?: string;
}

const value = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

/** The run's summary, its input as a markdown list, and where it came from. */
export function runDetails(kind: RunKind, input: Input, origin?: RunOrigin): string {
  return clipText(detailsOf(kind, input, origin), DETAILS_MAX_BYTES);
}

function detailsOf(kind: RunKind, input: Input, origin?: RunOrigin): string {
  const lines = [`**${runSummary(kind, input)}**`, ''];
  if (kind === 'pitr' && input.target && typeof input.target === 'object')
    lines.push(`Target: ${describeTarget(input.target as RecoveryTarget)}`, '');
  lines.push('Input:');
  for (const [key, v] of Object.entries(input)) if (v !== undefined) lines.push(`- ${key}: \`${value(v)}\``);
  if (origin) lines.push('', `Started by ${origin.startedBy}${origin.note ? `: ${origin.note}` : ''}`);
  return lines.join('\n');
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const two = (n: string) => n.padStart(2, '0');

/**
 * A schedule's timing in words: "every day at 02:00 UTC", "every Sunday at 03:00 Europe/Berlin",
 * "every 15 minutes". A crontab line it cannot say plainly is shown as it is.
 */
export function humanTiming(timing: { cron: string } | { every: string }, timeZone: string): string {
  if ('every' in timing) return `every ${timing.every.trim()}`;
  const zone = timeZone === 'UTC' || timeZone === 'Etc/UTC' ? 'UTC' : timeZone;
  const fields = timing.cron.trim().split(/\s+/);
  const number = /^\d+$/;
  if (fields.length === 5) {
    const [minute, hour, dayOfMonth, month, dayOfWeek] = fields as [string, string, string, string, string];
    const step = /^\*\/(\d+)$/.exec(minute);
    if (step && hour === '*' && dayOfMonth === '*' && month === '*' && dayOfWeek === '*')
      return `every ${step[1]} minutes`;
    if (number.test(minute) && hour === '*' && dayOfMonth === '*' && month === '*' && dayOfWeek === '*')
      return `every hour at :${two(minute)}`;
    if (number.test(minute) && number.test(hour) && month === '*') {
      const at = `at ${two(hour)}:${two(minute)} ${zone}`;
      if (dayOfMonth === '*' && dayOfWeek === '*') return `every day ${at}`;
      if (dayOfMonth === '*' && number.test(dayOfWeek) && Number(dayOfWeek) <= 7)
        return `every ${DAYS[Number(dayOfWeek) % 7]} ${at}`;
      if (number.test(dayOfMonth) && dayOfWeek === '*') return `on day ${Number(dayOfMonth)} of every month ${at}`;
    }
  }
  return `cron "${timing.cron.trim()}" (${zone})`;
}

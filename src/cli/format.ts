// Human-readable output for the CLI: sizes, durations, times, the runs of `pgwarden list`, the
// schedules and offsite reports (a run's progress is progressView.ts). Pure: the caller supplies
// the clock, so every function here is unit-tested.
import { formatBytes } from '../lib/diskSpace.js';
import type { OffsiteRepositoryResult } from '../workflows/offsiteSync.js';
import type { ScheduleRow } from './scheduleOps.js';

export function formatDuration(seconds: number): string {
  // Rounded first, so 59.96 s reads 1m00s and 119.6 s 2m00s (not 60.0s, 1m60s).
  const tenths = Math.round(seconds * 10) / 10;
  if (tenths < 60) return `${tenths.toFixed(1)}s`;
  const whole = Math.round(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
  const minutes = Math.floor(whole / 60);
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

/** Whole seconds below a minute (a live clock that does not flicker decimals): 7s, 1m05s, 2h03m. */
export function formatElapsed(seconds: number): string {
  return seconds < 60 ? `${Math.max(0, Math.floor(seconds))}s` : formatDuration(seconds);
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** `2026-11-22 14:31:05` in the machine's local time zone. */
export function formatLocalTime(date: Date): string {
  return `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())} ${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`;
}

/** `Sun 2026-11-22 03:00 EST` in `timeZone` (default: the machine's), the zone named as Intl names it. */
export function formatZonedTime(date: Date, timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    weekday: 'short',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  }).formatToParts(date);
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value])) as Record<string, string>;
  return `${p.weekday} ${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${p.timeZoneName}`;
}

/** `in 5h12m` / `2m05s ago`, from `now` (ms). */
export function formatFromNow(date: Date, now: number): string {
  const seconds = (date.getTime() - now) / 1000;
  return seconds >= 0 ? `in ${formatElapsed(seconds)}` : `${formatElapsed(-seconds)} ago`;
}

/** `pgwarden schedules list`: per schedule its timing, then its next runs and last run in local time with the zone. */
export function scheduleLines(rows: readonly ScheduleRow[], now: number, timeZone?: string): string[] {
  const lines: string[] = [];
  for (const r of rows) {
    const next = r.nextRuns.map(
      (t, i) => formatZonedTime(new Date(t), timeZone) + (i === 0 ? ` (${formatFromNow(new Date(t), now)})` : ''),
    );
    const last = r.lastRun
      ? `last ${formatZonedTime(new Date(r.lastRun.scheduledAt), timeZone)} ${r.lastRun.status.toLowerCase()}`
      : 'not run yet';
    lines.push(`${r.id}  ${r.workflowType}  ${r.timing}${r.paused ? `  PAUSED${r.note ? ` (${r.note})` : ''}` : ''}`);
    lines.push(`    next ${r.paused ? '- (paused)' : next.join(', ') || '-'}; ${last}`);
  }
  return lines;
}

/** A run of `pgwarden list`. */
export interface RunRow {
  workflowId: string;
  kind: string;
  status: string;
  startTime?: Date;
  closeTime?: Date;
}

/** `pgwarden list` as aligned columns; running runs show the time so far. */
export function runTable(rows: RunRow[], now: number): string[] {
  const cells = rows.map((r) => [
    r.workflowId,
    r.kind,
    r.status,
    r.startTime ? formatLocalTime(r.startTime) : '-',
    r.startTime ? formatDuration(Math.max(0, ((r.closeTime?.getTime() ?? now) - r.startTime.getTime()) / 1000)) : '-',
  ]);
  const header = ['WORKFLOW ID', 'KIND', 'STATUS', 'STARTED', 'DURATION'];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  return [header, ...cells].map((c) =>
    c.map((cell, i) => (i === c.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '),
  );
}

/** Temporal's status names (RUNNING, TIMED_OUT) as `pgwarden list --status` spells them. */
export function statusWord(status: string): string {
  return status.toLowerCase().replace(/_/g, '-');
}

/**
 * The step's detail at an approval, split into what would be done and how to approve: the
 * workflows end their `approve` detail with "Approve: pgwarden approve <id> ...".
 */
export function approvalOf(
  detail: string | undefined,
  workflowId: string,
): { what?: string; approve: string; reject: string } {
  const command = `pgwarden approve ${workflowId} --approver NAME --reason TEXT`;
  const reject = `pgwarden reject ${workflowId} --approver NAME --reason TEXT`;
  if (!detail) return { approve: command, reject };
  const at = detail.indexOf(' Approve: ');
  const what = (at >= 0 ? detail.slice(0, at) : detail).trim();
  return { what: what || undefined, approve: command, reject };
}

/**
 * `pgwarden offsite sync|check`: one line per repository (what moved, what the check saw), and for a
 * failing one its error, then each problem of its check on its own line.
 */
export function offsiteReportLines(repositories: readonly OffsiteRepositoryResult[]): string[] {
  const lines: string[] = [];
  for (const repo of repositories) {
    const sync = repo.sync
      ? `uploaded ${repo.sync.uploaded} (${formatBytes(repo.sync.uploadedBytes)}), ${repo.sync.alreadyThere} already there; `
      : '';
    const removed = repo.retention?.removedObjects
      ? `retention removed ${repo.retention.removedObjects} objects; `
      : '';
    if (repo.error) {
      const [first, ...problems] = repo.error.split('\n').filter((l) => l.trim());
      lines.push(`${repo.repository}: ${sync}FAILED: ${first ?? 'unknown error'}`);
      for (const p of problems) lines.push(`  ${p.trim()}`);
      continue;
    }
    const c = repo.check;
    if (!c) {
      lines.push(`${repo.repository}: ${sync}${removed}not checked`);
      continue;
    }
    const counts = Object.entries(c.counts)
      .map(([k, v]) => `${k} ${v.remote}`)
      .join(', ');
    const archived = c.archived ? `, ${c.archived} in an archive storage class (size and recorded sha256 only)` : '';
    lines.push(
      `${repo.repository}: ${sync}${removed}check passed: ${counts} objects, ${c.contentChecked} read back and hashed${archived}`,
    );
  }
  return lines;
}

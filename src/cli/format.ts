// Human-readable output for the CLI: sizes, durations, times, and the progress of a run (the live
// bar of `--wait`, the plain lines when stdout is not a terminal, `pgwarden status`). Pure: the
// caller supplies the clock and the terminal width, so every function here is unit-tested.
import { formatBytes } from '../lib/diskSpace.js';
import type { ActivityStatus, LiveStatus } from './client.js';
import type { OffsiteRepositoryResult } from '../workflows/offsiteSync.js';
import type { ScheduleRow } from './scheduleOps.js';

export { formatBytes };

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
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZoneName: 'short' }).formatToParts(date);
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
    const next = r.nextRuns.map((t, i) => formatZonedTime(new Date(t), timeZone) + (i === 0 ? ` (${formatFromNow(new Date(t), now)})` : ''));
    const last = r.lastRun ? `last ${formatZonedTime(new Date(r.lastRun.scheduledAt), timeZone)} ${r.lastRun.status.toLowerCase()}` : 'not run yet';
    lines.push(`${r.id}  ${r.workflowType}  ${r.timing}${r.paused ? `  PAUSED${r.note ? ` (${r.note})` : ''}` : ''}`);
    lines.push(`    next ${r.paused ? '- (paused)' : next.join(', ') || '-'}; ${last}`);
  }
  return lines;
}

/** What a heartbeat says, whichever activity sent it (each names its fields its own way). */
export interface HeartbeatView {
  phase?: string;
  bytes?: number;
  /** What the bytes are: stored (backup), read (check), or nothing said. */
  bytesLabel?: string;
  /** How many bytes there are in all, when the activity says (`totalBytes`). */
  totalBytes?: number;
  /** Items done out of a known total (objects uploaded, WAL files staged). */
  count?: { done: number; total: number; unit: string };
  /** The replayed WAL position (recovery). */
  lsn?: string;
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export function readHeartbeat(hb: Record<string, unknown> | undefined): HeartbeatView {
  if (!hb || typeof hb !== 'object') return {};
  const view: HeartbeatView = {};
  if (typeof hb.phase === 'string') view.phase = hb.phase;
  if (isNumber(hb.storedBytes)) Object.assign(view, { bytes: hb.storedBytes, bytesLabel: 'stored' });
  else if (isNumber(hb.bytesRead)) Object.assign(view, { bytes: hb.bytesRead, bytesLabel: 'read' });
  else if (isNumber(hb.bytes)) view.bytes = hb.bytes;
  if (view.bytes !== undefined && isNumber(hb.totalBytes) && hb.totalBytes > 0) view.totalBytes = hb.totalBytes;
  if (isNumber(hb.of)) {
    if (isNumber(hb.walFiles)) view.count = { done: hb.walFiles, total: hb.of, unit: 'WAL files' };
    else if (isNumber(hb.objects)) view.count = { done: hb.objects, total: hb.of, unit: 'objects' };
  } else if (isNumber(hb.objects)) {
    view.count = { done: hb.objects, total: NaN, unit: 'objects' };
  }
  if (typeof hb.lsn === 'string') view.lsn = hb.lsn;
  return view;
}

/** One reading of a byte counter: which activity attempt and phase, how far, and when (ms). */
export interface RateSample {
  key: string;
  bytes: number;
  at: number;
}

/** Rate between successive heartbeats of the same activity attempt and phase. */
export interface RateMeter {
  last?: RateSample;
  /** Bytes per second between the last two distinct heartbeats. */
  rate?: number;
}

/**
 * The meter after one more reading. A reading of the same heartbeat (same time) changes nothing;
 * another activity, attempt or phase, or a counter that went back, starts over.
 */
export function nextRate(meter: RateMeter, sample: RateSample | undefined): RateMeter {
  if (!sample) return {};
  const last = meter.last;
  if (!last || last.key !== sample.key || sample.bytes < last.bytes) return { last: sample };
  if (sample.at <= last.at) return meter;
  return { last: sample, rate: ((sample.bytes - last.bytes) * 1000) / (sample.at - last.at) };
}

/** The running activity whose heartbeat tells the most (one with a byte counter first). */
export function mainActivity(live: Pick<LiveStatus, 'activities'>): ActivityStatus | undefined {
  const activities = live.activities ?? [];
  return (
    activities.find((a) => readHeartbeat(a.heartbeat).bytes !== undefined) ??
    activities.find((a) => a.heartbeat !== undefined) ??
    activities.find((a) => a.state === 'started') ??
    activities[0]
  );
}

/** The byte counter of `activity` (of the run `run`) as a rate sample, timed by its heartbeat, else by `now`. */
export function rateSample(activity: ActivityStatus | undefined, now: number, run = ''): RateSample | undefined {
  if (!activity) return undefined;
  const hb = readHeartbeat(activity.heartbeat);
  if (hb.bytes === undefined) return undefined;
  return { key: `${run}${activity.activityId}#${activity.attempt}:${hb.phase ?? ''}`, bytes: hb.bytes, at: activity.heartbeatAt?.getTime() ?? now };
}

/** Everything one progress line shows. */
export interface ProgressView {
  /** The workflow's step (the `progress` query), else its status when it does not answer. */
  step: string;
  detail?: string;
  phase?: string;
  bytes?: number;
  bytesLabel?: string;
  totalBytes?: number;
  rate?: number;
  count?: { done: number; total: number; unit: string };
  /** 0..1, only where a total is known. */
  fraction?: number;
  lsn?: string;
  /** Seconds since the run started. */
  elapsed: number;
}

export function progressView(live: LiveStatus, meter: RateMeter, now: number): ProgressView {
  const activity = mainActivity(live);
  const hb = readHeartbeat(activity?.heartbeat ?? live.heartbeat);
  const step = live.progress?.step ?? (live.status === 'RUNNING' ? 'unknown step' : live.status.toLowerCase());
  const view: ProgressView = { step, elapsed: live.startTime ? Math.max(0, (now - live.startTime.getTime()) / 1000) : 0 };
  if (live.progress?.detail) view.detail = live.progress.detail;
  // The phase only when it says more than the step (a child's step ends the step: `… › app/full: dump`).
  if (hb.phase && hb.phase !== step && !step.endsWith(`: ${hb.phase}`)) view.phase = hb.phase;
  if (hb.bytes !== undefined) Object.assign(view, { bytes: hb.bytes, bytesLabel: hb.bytesLabel, totalBytes: hb.totalBytes });
  if (hb.bytes !== undefined && meter.rate !== undefined) view.rate = meter.rate;
  if (hb.count) {
    view.count = hb.count;
    if (Number.isFinite(hb.count.total) && hb.count.total > 0) view.fraction = Math.min(1, Math.max(0, hb.count.done / hb.count.total));
  }
  if (view.fraction === undefined && hb.bytes !== undefined && hb.totalBytes) view.fraction = Math.min(1, Math.max(0, hb.bytes / hb.totalBytes));
  if (hb.lsn) view.lsn = hb.lsn;
  return view;
}

/** What a child run is for, in a few characters: `<db>/<kind>` of `pgwarden/<cluster>/<db>/<kind>/<id>`, else its type. */
export function childLabel(child: { workflowId: string; workflowType: string }): string {
  const parts = child.workflowId.split('/');
  return parts[0] === 'pgwarden' && parts.length === 5 ? `${parts[2]}/${parts[3]}` : child.workflowType;
}

/**
 * A parent that waits for a child (no activity of its own) shows the child's step and heartbeat,
 * under its own step and clock: `backup-databases › app/full: dump`.
 */
export function withChild(parent: LiveStatus, child: LiveStatus, label: string): LiveStatus {
  const step = `${parent.progress?.step ?? 'unknown step'} › ${label}: ${child.progress?.step ?? (child.status === 'RUNNING' ? 'unknown step' : child.status.toLowerCase())}`;
  return {
    ...child,
    status: parent.status,
    startTime: parent.startTime,
    closeTime: parent.closeTime,
    progress: { step, since: child.progress?.since ?? '', done: child.progress?.done ?? [], detail: child.progress?.detail },
  };
}

/** `[#########-----------]`; `width` counts the characters between the brackets. */
export function progressBar(fraction: number, width = 20): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

function countText(c: NonNullable<ProgressView['count']>): string {
  return Number.isFinite(c.total) ? `${c.done}/${c.total} ${c.unit}` : `${c.done} ${c.unit}`;
}

function bytesText(v: Pick<ProgressView, 'bytes' | 'bytesLabel' | 'totalBytes'>): string | undefined {
  if (v.bytes === undefined) return undefined;
  return `${formatBytes(v.bytes)}${v.totalBytes ? ` of ${formatBytes(v.totalBytes)}` : ''}${v.bytesLabel ? ` ${v.bytesLabel}` : ''}`;
}

/** What the run is doing, without the clock: the plain output prints a line when this changes. */
export function progressKey(v: ProgressView): string {
  const what = [v.phase, v.count && countText(v.count), bytesText(v), v.lsn && `at ${v.lsn}`].filter(Boolean).join(', ');
  return `${v.step}${what ? `: ${what}` : ''}`;
}

/**
 * A plain line (no escape codes) for logs and pipes: step, phase, counts, bytes, rate, elapsed;
 * the step's detail when there is no heartbeat to show.
 */
export function plainProgressLine(v: ProgressView): string {
  const parts = [
    v.phase,
    v.count && `${countText(v.count)}${v.fraction !== undefined ? ` (${Math.floor(v.fraction * 100)}%)` : ''}`,
    bytesText(v) && `${bytesText(v)}${!v.count && v.fraction !== undefined ? ` (${Math.floor(v.fraction * 100)}%)` : ''}`,
    v.rate !== undefined && formatRate(v.rate),
    v.lsn && `at ${v.lsn}`,
  ].filter(Boolean);
  const what = parts.length ? parts.join(', ') : v.detail;
  return `${v.step}${what ? `: ${what}` : ''} (${formatElapsed(v.elapsed)})`;
}

/**
 * The live line on a terminal, at most `columns - 1` characters (a full line would wrap and break
 * the rewrite in place): step/phase, a bar and a percentage where the total is known, bytes, rate,
 * elapsed; the step's detail fills what room is left when there is no heartbeat.
 */
export function ttyProgressLine(v: ProgressView, columns = 80): string {
  const max = Math.max(20, columns - 1);
  const head = v.phase ? `${v.step}/${v.phase}` : v.step;
  const parts = [
    v.fraction !== undefined && `${progressBar(v.fraction, 20)} ${String(Math.floor(v.fraction * 100)).padStart(3)}%`,
    v.count && countText(v.count),
    bytesText(v),
    v.rate !== undefined && formatRate(v.rate),
    v.lsn && `at ${v.lsn}`,
  ].filter(Boolean) as string[];
  const clock = formatElapsed(v.elapsed);
  let line = [head, ...parts].join('  ');
  if (!parts.length && v.detail) line = `${head}: ${v.detail}`;
  const room = max - clock.length - 2;
  if (line.length > room) line = `${line.slice(0, Math.max(0, room - 1))}…`;
  return `${line}  ${clock}`;
}

/** Kept for callers of the single-line summary: the step, and what a backup stored. */
export function progressLine(live: LiveStatus): string {
  const step = live.progress?.step ?? live.status.toLowerCase();
  const hb = readHeartbeat(live.heartbeat);
  const bytes = hb.bytes !== undefined ? ` ${hb.phase ?? ''}: ${formatBytes(hb.bytes)}${hb.bytesLabel ? ` ${hb.bytesLabel}` : ''}` : '';
  return `${step}${bytes}`;
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
  return [header, ...cells].map((c) => c.map((cell, i) => (i === c.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}

/** Temporal's status names (RUNNING, TIMED_OUT) as `pgwarden list --status` spells them. */
export function statusWord(status: string): string {
  return status.toLowerCase().replace(/_/g, '-');
}

/**
 * The step's detail at an approval, split into what would be done and how to approve: the
 * workflows end their `approve` detail with "Approve: pgwarden approve <id> ...".
 */
export function approvalOf(detail: string | undefined, workflowId: string): { what?: string; approve: string; reject: string } {
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
    const sync = repo.sync ? `uploaded ${repo.sync.uploaded} (${formatBytes(repo.sync.uploadedBytes)}), ${repo.sync.alreadyThere} already there; ` : '';
    const removed = repo.retention?.removedObjects ? `retention removed ${repo.retention.removedObjects} objects; ` : '';
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
    const counts = Object.entries(c.counts).map(([k, v]) => `${k} ${v.remote}`).join(', ');
    const archived = c.archived ? `, ${c.archived} in an archive storage class (size and recorded sha256 only)` : '';
    lines.push(`${repo.repository}: ${sync}${removed}check passed: ${counts} objects, ${c.contentChecked} read back and hashed${archived}`);
  }
  return lines;
}

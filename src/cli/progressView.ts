// The progress of a run as the CLI shows it: what a heartbeat says, the rate between heartbeats,
// the live bar of `--wait`, the plain lines when stdout is not a terminal. Pure: the caller supplies
// the clock and the terminal width, so every function here is unit-tested.
import type { ActivityStatus, LiveStatus } from './client.js';
import { formatElapsed, formatRate } from './format.js';
import { formatBytes } from '../lib/diskSpace.js';

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
  return {
    key: `${run}${activity.activityId}#${activity.attempt}:${hb.phase ?? ''}`,
    bytes: hb.bytes,
    at: activity.heartbeatAt?.getTime() ?? now,
  };
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
  const view: ProgressView = {
    step,
    elapsed: live.startTime ? Math.max(0, (now - live.startTime.getTime()) / 1000) : 0,
  };
  if (live.progress?.detail) view.detail = live.progress.detail;
  // The phase only when it says more than the step (a child's step ends the step: `… › app/full: dump`).
  if (hb.phase && hb.phase !== step && !step.endsWith(`: ${hb.phase}`)) view.phase = hb.phase;
  if (hb.bytes !== undefined)
    Object.assign(view, { bytes: hb.bytes, bytesLabel: hb.bytesLabel, totalBytes: hb.totalBytes });
  if (hb.bytes !== undefined && meter.rate !== undefined) view.rate = meter.rate;
  if (hb.count) {
    view.count = hb.count;
    if (Number.isFinite(hb.count.total) && hb.count.total > 0)
      view.fraction = Math.min(1, Math.max(0, hb.count.done / hb.count.total));
  }
  if (view.fraction === undefined && hb.bytes !== undefined && hb.totalBytes)
    view.fraction = Math.min(1, Math.max(0, hb.bytes / hb.totalBytes));
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
    progress: {
      step,
      since: child.progress?.since ?? '',
      done: child.progress?.done ?? [],
      detail: child.progress?.detail,
    },
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
  const what = [v.phase, v.count && countText(v.count), bytesText(v), v.lsn && `at ${v.lsn}`]
    .filter(Boolean)
    .join(', ');
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
    bytesText(v) &&
      `${bytesText(v)}${!v.count && v.fraction !== undefined ? ` (${Math.floor(v.fraction * 100)}%)` : ''}`,
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

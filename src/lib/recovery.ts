// A recovery target, checked and described, and the recovery settings that replay to it: pure, one
// list of setting names for writing them and for resetting them. The plan that picks a base backup
// and the WAL for a target is recoveryPath.ts.
import { ErrorType, nonRetryable } from './errors.js';
import { parseLsn } from './wal.js';

export type RecoveryTarget = { time: string } | { lsn: string } | { name: string } | { latest: true };

export function describeTarget(target: RecoveryTarget): string {
  if ('time' in target) return `time ${target.time}`;
  if ('lsn' in target) return `LSN ${target.lsn}`;
  if ('name' in target) return `restore point "${target.name}"`;
  return 'the end of the archive (latest)';
}

/** Checks the target's shape; returns the time as a Date for time targets. */
export function validateTarget(target: RecoveryTarget, now: Date): Date | undefined {
  const bad = (why: string) => nonRetryable(ErrorType.BadTarget, why);
  if (!target || typeof target !== 'object')
    throw bad('target must be one of {"time"}, {"lsn"}, {"name"}, {"latest": true}');
  const keys = Object.keys(target);
  if (keys.length !== 1)
    throw bad(`target must have exactly one of time, lsn, name, latest (got ${keys.join(', ') || 'none'})`);
  if ('time' in target) {
    // An explicit zone: a bare "14:31" means different instants on the worker and the operator's laptop.
    if (!/(Z|[+-]\d{2}(:?\d{2})?)$/i.test(target.time.trim()))
      throw bad(`target time "${target.time}" has no time zone (write e.g. 2026-11-22 14:31:00+00)`);
    const t = new Date(
      target.time
        .trim()
        .replace(' ', 'T')
        .replace(/([+-]\d{2})$/, '$1:00'),
    );
    if (Number.isNaN(t.getTime())) throw bad(`target time "${target.time}" is not a time`);
    if (t.getTime() > now.getTime()) throw bad(`target time ${t.toISOString()} is in the future`);
    return t;
  }
  if ('lsn' in target) {
    try {
      parseLsn(target.lsn);
    } catch {
      throw bad(`target LSN "${target.lsn}" is not an LSN (like 0/3000060)`);
    }
    return undefined;
  }
  if ('name' in target) {
    if (!target.name || target.name.length > 63) throw bad('restore point name must be 1 to 63 characters');
    return undefined;
  }
  if ((target as { latest?: unknown }).latest !== true) throw bad('target "latest" must be true');
  return undefined;
}

/**
 * The recovery settings pgwarden writes, in the order written: ONE list, so that what is written
 * after an in-place recovery is also reset (a later crash recovery must not see them).
 */
const RECOVERY_SETTINGS: {
  name: string;
  value(target: RecoveryTarget, o: RecoverySettingsOptions): string | undefined;
}[] = [
  { name: 'restore_command', value: (_t, o) => o.restoreCommand },
  // The plan's timeline, not 'latest': a branch an earlier rolled-back recovery left in the
  // archive is newer, and is not this cluster's history.
  { name: 'recovery_target_timeline', value: (_t, o) => String(o.timeline) },
  // 'shutdown' for an in-place recovery's replay before the approval: the server stops at the
  // target without promoting, and the start after the approval replays from its last restartpoint.
  { name: 'recovery_target_action', value: (_t, o) => o.action ?? 'promote' },
  { name: 'recovery_target_time', value: (t) => ('time' in t ? t.time : undefined) },
  { name: 'recovery_target_lsn', value: (t) => ('lsn' in t ? t.lsn : undefined) },
  { name: 'recovery_target_name', value: (t) => ('name' in t ? t.name : undefined) },
];

export interface RecoverySettingsOptions {
  /** restore_command reading the staged WAL. */
  restoreCommand: string;
  /** The timeline the plan chose. */
  timeline: number;
  /** What the server does at the target; default 'promote'. */
  action?: 'promote' | 'shutdown';
}

/** Every recovery setting name pgwarden may write, and resets after an in-place recovery. */
export const RECOVERY_SETTING_NAMES: readonly string[] = RECOVERY_SETTINGS.map((s) => s.name);

/** The recovery settings for PostgreSQL 12+ (with recovery.signal; never recovery.conf) that replay to `target`. */
export function recoverySettings(target: RecoveryTarget, options: RecoverySettingsOptions): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const s of RECOVERY_SETTINGS) {
    const value = s.value(target, options);
    if (value !== undefined) settings[s.name] = value;
  }
  return settings;
}

/** The statements that remove every recovery setting from postgresql.auto.conf (then pg_reload_conf()). */
export function recoverySettingResets(): string[] {
  return RECOVERY_SETTING_NAMES.map((name) => `ALTER SYSTEM RESET ${name}`);
}

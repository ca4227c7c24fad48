// Grandfather-father-son retention: which backups to keep, which to delete, and why. Pure: the
// caller lists the backups, this decides, an activity deletes.
//
// A backup is kept when any rule claims it:
//   daily N    the newest backup of each of the N most recent days that have backups (UTC)
//   weekly N   the newest of each of the N most recent ISO weeks that have backups
//   monthly N  the newest of each of the N most recent months that have backups
//   yearly N   the newest of each of the N most recent years (null: every year, forever)
//   minimum N  the N newest backups, whatever their dates
//   verified   the newest backup whose restore was verified
//   in use     a backup a running restore or verification uses
//   pitr-window  (base backups) the one the PITR window's continuous WAL starts from
// and nothing at all is deleted when the rules would leave no backup.

export interface RetentionPolicy {
  daily: number;
  weekly: number;
  monthly: number;
  /** null keeps one backup per year forever. */
  yearly: number | null;
  minimum: number;
}

export interface RetentionCandidate {
  backupId: string;
  /** Start time of the backup (from its id). */
  time: Date;
  verified: boolean;
  inUse?: boolean;
  /** Base backups: the one the PITR window starts from (see walRetention.ts windowAnchor). */
  pitrWindow?: boolean;
}

export type KeepReason =
  'daily' | 'weekly' | 'monthly' | 'yearly' | 'minimum' | 'newest-verified' | 'in-use' | 'pitr-window';

export interface RetentionDecision {
  keep: { backupId: string; reasons: KeepReason[] }[];
  delete: { backupId: string; reason: string }[];
}

/**
 * Logical backups (one per database per day): a week of dailies, a month of weeklies, a year of
 * monthlies, and the last backup of the previous year (yearly 2: this year's newest is the newest
 * backup anyway). Bounded: at most daily + weekly + monthly + yearly + minimum + 1 (verified) = 29,
 * in practice 25 with one backup a day. `yearly: null` (forever) only when configured.
 */
export const DEFAULT_RETENTION: RetentionPolicy = { daily: 7, weekly: 4, monthly: 12, yearly: 2, minimum: 3 };

/**
 * Base backups (one per week, each a copy of the whole cluster): the newest two weeks' (the PITR
 * window's) plus the one the window starts from, and the last of each of the last 3 months, each
 * restorable to its consistency point. Longer history is the logical backups' job: smaller, and
 * restorable into a newer PostgreSQL. At most weekly + monthly + minimum + verified + window = 9.
 */
export const DEFAULT_BASE_RETENTION: RetentionPolicy = { daily: 0, weekly: 2, monthly: 3, yearly: 0, minimum: 2 };

/** The most a policy keeps, whatever the history: each rule's count, the newest verified, the window's backup; in-use ones aside. */
export function retentionBound(p: RetentionPolicy, window = false): number | undefined {
  if (p.yearly === null) return undefined;
  return p.daily + p.weekly + p.monthly + p.yearly + p.minimum + 1 + (window ? 1 : 0);
}

const dayKey = (t: Date) => t.toISOString().slice(0, 10);
const monthKey = (t: Date) => t.toISOString().slice(0, 7);
const yearKey = (t: Date) => t.toISOString().slice(0, 4);

/** ISO 8601 week, e.g. `2026-W52`; the days around New Year belong to the week's year. */
export function isoWeekKey(t: Date): string {
  const d = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
  const weekday = d.getUTCDay() || 7; // Monday 1 … Sunday 7
  d.setUTCDate(d.getUTCDate() + 4 - weekday); // the Thursday of this week decides the year
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((d.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${d.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

export function applyRetention(backups: readonly RetentionCandidate[], policy: RetentionPolicy): RetentionDecision {
  const newestFirst = [...backups].sort(
    (a, b) => b.time.getTime() - a.time.getTime() || b.backupId.localeCompare(a.backupId),
  );
  const reasons = new Map<string, Set<KeepReason>>(newestFirst.map((b) => [b.backupId, new Set()]));
  const claim = (b: RetentionCandidate, reason: KeepReason) => reasons.get(b.backupId)!.add(reason);

  const perPeriod = (key: (t: Date) => string, count: number | null, reason: KeepReason) => {
    const seen = new Set<string>();
    for (const b of newestFirst) {
      const k = key(b.time);
      if (seen.has(k)) continue;
      if (count !== null && seen.size >= count) break;
      seen.add(k);
      claim(b, reason); // newest first, so the first seen of a period is its newest
    }
  };
  perPeriod(dayKey, policy.daily, 'daily');
  perPeriod(isoWeekKey, policy.weekly, 'weekly');
  perPeriod(monthKey, policy.monthly, 'monthly');
  perPeriod(yearKey, policy.yearly, 'yearly');
  newestFirst.slice(0, policy.minimum).forEach((b) => claim(b, 'minimum'));
  const newestVerified = newestFirst.find((b) => b.verified);
  if (newestVerified) claim(newestVerified, 'newest-verified');
  newestFirst.filter((b) => b.inUse).forEach((b) => claim(b, 'in-use'));
  newestFirst.filter((b) => b.pitrWindow).forEach((b) => claim(b, 'pitr-window'));

  const keep = newestFirst.filter((b) => reasons.get(b.backupId)!.size > 0);
  if (keep.length === 0) {
    return { keep: newestFirst.map((b) => ({ backupId: b.backupId, reasons: ['minimum'] })), delete: [] };
  }
  const order: KeepReason[] = [
    'in-use',
    'pitr-window',
    'newest-verified',
    'minimum',
    'daily',
    'weekly',
    'monthly',
    'yearly',
  ];
  return {
    keep: keep.map((b) => ({ backupId: b.backupId, reasons: order.filter((r) => reasons.get(b.backupId)!.has(r)) })),
    delete: newestFirst
      .filter((b) => reasons.get(b.backupId)!.size === 0)
      .map((b) => ({ backupId: b.backupId, reason: describeDeletion(policy) })),
  };
}

function describeDeletion(p: RetentionPolicy): string {
  const yearly = p.yearly === null ? 'every year' : `${p.yearly} yearly`;
  return `outside the policy (${p.daily} daily, ${p.weekly} weekly, ${p.monthly} monthly, ${yearly}, ${p.minimum} newest)`;
}

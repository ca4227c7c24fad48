// An offsite repository's own retention: which committed remote backups (and the WAL only they
// need) its policy lets go. Pure; keys as in offsiteKeys.ts.
import { backupIdTime, isBackupId } from './ids.js';
import { MANIFEST_FILE } from './layout.js';
import { walNameOf } from './offsiteKeys.js';
import { applyRetention, type RetentionPolicy } from './retention.js';
import { planWalRetention, type RetainedBaseBackup } from './walRetention.js';

/** A committed backup on the remote, as retention sees it. */
export interface RemoteBackup {
  kind: 'logical' | 'base';
  /** `<cluster>/logical/<db>/<id>` or `<cluster>/base/<id>`: every key under it belongs to it. */
  dir: string;
  /** Retention groups: one database's logical backups, or the cluster's base backups. */
  group: string;
  backupId: string;
  /** Base backups: where their WAL starts. */
  wal?: RetainedBaseBackup;
}

/** Committed remote backups, from the keys alone (manifest.json present). */
export function remoteBackups(keys: readonly string[]): Omit<RemoteBackup, 'wal'>[] {
  const out: Omit<RemoteBackup, 'wal'>[] = [];
  for (const key of keys) {
    const parts = key.split('/');
    if (parts.at(-1) !== MANIFEST_FILE) continue;
    if (parts[1] === 'logical' && parts.length === 5 && isBackupId(parts[3]!)) {
      out.push({
        kind: 'logical',
        dir: parts.slice(0, 4).join('/'),
        group: parts.slice(0, 3).join('/'),
        backupId: parts[3]!,
      });
    } else if (parts[1] === 'base' && parts.length === 4 && isBackupId(parts[2]!)) {
      out.push({
        kind: 'base',
        dir: parts.slice(0, 3).join('/'),
        group: parts.slice(0, 2).join('/'),
        backupId: parts[2]!,
      });
    }
  }
  return out.sort((a, b) => a.dir.localeCompare(b.dir));
}

export interface RemoteRetentionDecision {
  /** Keys to remove, each backup's manifest.json first (it stops being a backup before its data goes). */
  remove: string[];
  reasons: { what: string; reason: string }[];
}

/**
 * The remote's own retention (DESIGN.md rule 7: never driven by local state): backups older than
 * `days` go, but each group keeps its newest backup whatever its age; WAL goes only below the
 * start of the oldest base backup kept, and never when no base backup remains to anchor it.
 */
export function planRemoteRetention(
  keys: readonly string[],
  backups: readonly RemoteBackup[],
  policy: OffsiteRetention,
  now: Date,
): RemoteRetentionDecision {
  const expired = typeof policy === 'number' ? expiredByAge(backups, policy, now) : expiredByTiers(backups, policy);
  const remove: string[] = [];
  const reasons: RemoteRetentionDecision['reasons'] = [];
  for (const { backup: b, reason } of expired) {
    const under = keys.filter((k) => k.startsWith(b.dir + '/'));
    const manifest = `${b.dir}/${MANIFEST_FILE}`;
    remove.push(...under.filter((k) => k === manifest), ...under.filter((k) => k !== manifest).sort());
    reasons.push({ what: b.dir, reason });
  }
  const expiredDirs = new Set(expired.map((e) => e.backup.dir));
  const keptBase = backups.filter((b) => b.kind === 'base' && !expiredDirs.has(b.dir));
  if (keptBase.length > 0 && keptBase.every((b) => b.wal)) {
    const walKeys = keys.filter((k) => k.split('/')[1] === 'wal');
    const byName = new Map<string, string[]>();
    for (const k of walKeys) {
      const name = walNameOf(k.split('/')[2]!);
      byName.set(name, [...(byName.get(name) ?? []), k]);
    }
    const decision = planWalRetention(
      [...byName.keys()],
      keptBase.map((b) => b.wal!),
    );
    for (const { name, reason } of decision.delete) {
      const files = byName.get(name)!;
      // The record first: a half-done removal leaves an unknown data object, never a record without data.
      remove.push(...files.filter((k) => k.endsWith('.json')), ...files.filter((k) => !k.endsWith('.json')));
      reasons.push({ what: name, reason });
    }
  }
  return { remove, reasons };
}

/**
 * An offsite repository's retention: tiers like the local grandfather-father-son policy (newest of
 * each of the `daily` most recent days, `weekly` weeks, `monthly` months, `yearly` years, and the
 * `minimum` newest), or, from older configs, a number of days.
 */
export type OffsiteRetention = RetentionPolicy | number;

/** The shipped offsite tiers: a month of dailies, weekly for ~90 days, monthly for a year. */
export const DEFAULT_OFFSITE_RETENTION: RetentionPolicy = { daily: 30, weekly: 13, monthly: 12, yearly: 0, minimum: 3 };

/** A repository's policy from its config: `retention` tiers, else the older `retentionDays`, else the default tiers. */
export function offsiteRetention(repo: { retention?: RetentionPolicy; retentionDays?: number }): OffsiteRetention {
  return repo.retention ?? repo.retentionDays ?? DEFAULT_OFFSITE_RETENTION;
}

type Expired = { backup: RemoteBackup; reason: string };

/** Older than `days`, except each group's newest. */
function expiredByAge(backups: readonly RemoteBackup[], days: number, now: Date): Expired[] {
  const cutoff = now.getTime() - days * 86_400_000;
  const newest = new Map<string, string>();
  for (const b of backups) if ((newest.get(b.group) ?? '') < b.backupId) newest.set(b.group, b.backupId);
  return backups
    .filter((b) => {
      const t = backupIdTime(b.backupId);
      return t !== undefined && t.getTime() < cutoff && newest.get(b.group) !== b.backupId;
    })
    .map((backup) => ({ backup, reason: `older than ${days} days` }));
}

/** Per group (a database's logical backups, the cluster's base backups), the GFS tiers; a backup id without a time is kept. */
function expiredByTiers(backups: readonly RemoteBackup[], policy: RetentionPolicy): Expired[] {
  const groups = new Map<string, RemoteBackup[]>();
  for (const b of backups) if (backupIdTime(b.backupId)) groups.set(b.group, [...(groups.get(b.group) ?? []), b]);
  const out: Expired[] = [];
  for (const members of groups.values()) {
    const decision = applyRetention(
      members.map((b) => ({ backupId: b.backupId, time: backupIdTime(b.backupId)!, verified: false })),
      policy,
    );
    for (const d of decision.delete)
      out.push({
        backup: members.find((b) => b.backupId === d.backupId)!,
        reason: d.reason.replace('outside the policy', 'outside the offsite policy'),
      });
  }
  return out.sort((a, b) => a.backup.dir.localeCompare(b.backup.dir));
}

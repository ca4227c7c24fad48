// What the remote check confirmed offsite, per repository: the durable record local retention
// reads before it deletes anything (the only copy is never deleted). Pure: the check's activity
// reads and writes the record, retention asks it.
//
// A group is a backup directory (`main/base/20261122T030000Z`, `main/logical/app/…`) or one WAL
// file (`main/wal/000000010000000000000003`); it is confirmed once a passing check saw every one of
// its local objects on the remote with the same size and recorded sha256.
import { groupOf, type LocalObject, type RemoteEntry } from './offsite.js';

export interface OffsiteConfirmations {
  repository: string;
  /** Group → when a passing check first confirmed it. */
  confirmed: Record<string, string>;
  /** The last passing check that wrote this record. */
  checkedAt?: string;
}

/** Groups whose every local object the remote holds, with the size and sha256 the check compared. */
export function confirmedGroups(local: readonly LocalObject[], remote: ReadonlyMap<string, RemoteEntry>): Set<string> {
  const ok = new Map<string, boolean>();
  for (const o of local) {
    const r = remote.get(o.key);
    const same = !!r && (o.marker || (r.bytes === o.bytes && (r.recordedSha256 === undefined || r.recordedSha256 === o.sha256)));
    const group = groupOf(o.key);
    ok.set(group, (ok.get(group) ?? true) && same);
  }
  return new Set([...ok].filter(([, v]) => v).map(([g]) => g));
}

/**
 * The record after a passing check: newly confirmed groups added (an earlier confirmation keeps its
 * time, even once the remote's own retention has let the copy go), and groups that no longer exist
 * locally dropped — within the check's scope only (a WAL-only check says nothing about backups).
 */
export function mergeConfirmations(
  record: OffsiteConfirmations | undefined,
  input: { repository: string; confirmed: Iterable<string>; localGroups: Iterable<string>; walOnly?: boolean; now: Date },
): OffsiteConfirmations {
  const out: OffsiteConfirmations = { repository: input.repository, confirmed: {}, checkedAt: input.now.toISOString() };
  const local = new Set(input.localGroups);
  for (const [group, at] of Object.entries(record?.confirmed ?? {})) {
    const inScope = !input.walOnly || group.split('/')[1] === 'wal';
    if (!inScope || local.has(group)) out.confirmed[group] = at;
  }
  for (const group of input.confirmed) out.confirmed[group] ??= input.now.toISOString();
  return out;
}

/** The repositories (of those configured) that have not confirmed a group yet; empty: it may be deleted locally. */
export function awaitingConfirmation(group: string, repositories: readonly string[], records: ReadonlyMap<string, OffsiteConfirmations | undefined>): string[] {
  return repositories.filter((r) => !records.get(r)?.confirmed[group]);
}

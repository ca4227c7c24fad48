// What the remote check confirmed offsite, per repository: the durable record local retention
// reads before it deletes anything (the only copy is never deleted). Pure: the check's activity
// reads and writes the record, retention asks it.
//
// A group is a backup directory (`main/base/20261122T030000Z`, `main/logical/app/…`) or one WAL
// file (`main/wal/000000010000000000000003`); it is confirmed once a passing check saw every one of
// its local objects on the remote with the same size and recorded sha256.
//
// A group the remote's own retention policy does not keep (a backup past its tiers, WAL below its
// oldest kept base backup: never uploaded, or already removed there) is recorded as not held
// offsite by policy, and local retention may delete it without a confirmation. That is safe in the
// sense the operator chose: their remote policy decided the offsite copy does not keep it, so waiting
// for it would keep it locally forever; the local policy alone decides its fate, as it would without
// an offsite repository. Only a passing check records it (a broken remote settles nothing), and the
// mark is re-decided at every check (a confirmation, once made, is kept while the group exists here).
import { groupOf, type LocalObject, type RemoteEntry } from './offsite.js';

export interface OffsiteConfirmations {
  repository: string;
  /** Group → when a passing check first confirmed it. */
  confirmed: Record<string, string>;
  /** The last passing check that wrote this record. */
  checkedAt?: string;
  /** Group → since when the remote's own retention policy does not keep it (as of the last passing check). */
  notHeld?: Record<string, string>;
}

/** Groups whose every local object the remote holds, with the size and sha256 the check compared. */
export function confirmedGroups(local: readonly LocalObject[], remote: ReadonlyMap<string, RemoteEntry>): Set<string> {
  const ok = new Map<string, boolean>();
  for (const o of local) {
    const r = remote.get(o.key);
    const same =
      !!r && (o.marker || (r.bytes === o.bytes && (r.recordedSha256 === undefined || r.recordedSha256 === o.sha256)));
    const group = groupOf(o.key);
    ok.set(group, (ok.get(group) ?? true) && same);
  }
  return new Set([...ok].filter(([, v]) => v).map(([g]) => g));
}

/**
 * The record after a passing check: newly confirmed groups added (an earlier confirmation keeps its
 * time, even once the remote's own retention has let the copy go), and groups that no longer exist
 * locally dropped; `localGroups` is everything committed here, whatever the remote's policy keeps.
 * `notHeld` (the groups the remote's policy does not keep) replaces the earlier set. Both within the
 * check's scope only (a WAL-only check says nothing about backups).
 */
export function mergeConfirmations(
  record: OffsiteConfirmations | undefined,
  input: {
    repository: string;
    confirmed: Iterable<string>;
    localGroups: Iterable<string>;
    notHeld?: Iterable<string>;
    walOnly?: boolean;
    now: Date;
  },
): OffsiteConfirmations {
  const out: OffsiteConfirmations = { repository: input.repository, confirmed: {}, checkedAt: input.now.toISOString() };
  const local = new Set(input.localGroups);
  const inScope = (group: string) => !input.walOnly || group.split('/')[1] === 'wal';
  for (const [group, at] of Object.entries(record?.confirmed ?? {})) {
    if (!inScope(group) || local.has(group)) out.confirmed[group] = at;
  }
  for (const group of input.confirmed) out.confirmed[group] ??= input.now.toISOString();
  const notHeld: Record<string, string> = {};
  for (const [group, at] of Object.entries(record?.notHeld ?? {})) if (!inScope(group)) notHeld[group] = at;
  for (const group of input.notHeld ?? [])
    if (local.has(group)) notHeld[group] = record?.notHeld?.[group] ?? input.now.toISOString();
  if (Object.keys(notHeld).length > 0) out.notHeld = notHeld;
  return out;
}

/**
 * The record after a passing check that compared `expected` (the committed local objects the
 * remote's own policy keeps) with `remote`: `inventory` is every committed local object in the
 * check's scope, and a group none of whose objects is expected is not held offsite by policy.
 */
export function recordAfterCheck(
  record: OffsiteConfirmations | undefined,
  input: {
    repository: string;
    inventory: readonly LocalObject[];
    expected: readonly LocalObject[];
    remote: ReadonlyMap<string, RemoteEntry>;
    walOnly?: boolean;
    now: Date;
  },
): OffsiteConfirmations {
  const localGroups = new Set(input.inventory.map((o) => groupOf(o.key)));
  const wanted = new Set(input.expected.map((o) => groupOf(o.key)));
  return mergeConfirmations(record, {
    repository: input.repository,
    confirmed: confirmedGroups(input.expected, input.remote),
    localGroups,
    notHeld: [...localGroups].filter((g) => !wanted.has(g)),
    walOnly: input.walOnly,
    now: input.now,
  });
}

/**
 * The repositories (of those configured) that have neither confirmed a group nor, by their own
 * retention policy, declined to keep it; empty: it may be deleted locally.
 */
export function awaitingConfirmation(
  group: string,
  repositories: readonly string[],
  records: ReadonlyMap<string, OffsiteConfirmations | undefined>,
): string[] {
  return repositories.filter((r) => !records.get(r)?.confirmed[group] && !records.get(r)?.notHeld?.[group]);
}

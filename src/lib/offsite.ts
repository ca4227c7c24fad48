// Pure logic of offsite sync: what a remote lacks and the remote check's verdict (the remote's own
// retention is offsiteRetention.ts). Keys are repository-relative paths: `<cluster>/logical/<db>/<id>/<file>`,
// `<cluster>/base/<id>/<file>`, `<cluster>/wal/<file>`.
import { isBackupId } from './ids.js';
import { MANIFEST_FILE } from './layout.js';
import { OBJECT_KINDS, objectKind, walNameOf, type ObjectKind } from './offsiteKeys.js';
import { isArchived } from './s3Errors.js';

/** What a remote says about one object: its size, and the sha256 stored beside it at upload. */
export interface RemoteEntry {
  key: string;
  bytes: number;
  /** The sha256 recorded with the object (S3 metadata, rsync checksum file); undefined when it has none. */
  recordedSha256?: string;
  /** S3: the object's storage class as listed (GLACIER and DEEP_ARCHIVE cannot be read back without a restore). */
  storageClass?: string;
  /** S3 INTELLIGENT_TIERING: the archive tier from HEAD (ARCHIVE_ACCESS, DEEP_ARCHIVE_ACCESS: no read-back either). */
  archiveStatus?: string;
}

/** A committed local object that every offsite copy must hold. */
export interface LocalObject {
  key: string;
  kind: ObjectKind;
  bytes: number;
  sha256: string;
  /**
   * A backup's manifest.json: the commit marker, uploaded after its artifacts. Locally it grows
   * (verification runs are appended), so the remote keeps the copy it first received and the
   * check holds it to its own recorded sha256 instead of the local one.
   */
  marker: boolean;
  /** When it was committed locally (manifest finishedAt, WAL archivedAt). */
  committedAt: string;
}

/**
 * What to upload, in an order that commits like the local repository: a backup's artifacts before
 * its manifest.json, a WAL file before its record. Anything the remote has under the key is left
 * alone, whatever it holds (the check reports a difference; pgwarden never overwrites).
 */
export function missingOnRemote(
  local: readonly LocalObject[],
  remote: ReadonlyMap<string, RemoteEntry>,
): LocalObject[] {
  const missing = local.filter((o) => !remote.has(o.key));
  return missing.sort((a, b) => commitRank(a) - commitRank(b) || a.key.localeCompare(b.key));
}

function commitRank(o: LocalObject): number {
  if (o.marker) return 2;
  return o.kind === 'wal' && o.key.endsWith('.json') ? 1 : 0;
}

export type CheckProblemKind =
  'missing' | 'short' | 'size' | 'differs' | 'corrupt' | 'unrecorded' | 'unknown' | 'unexpected' | 'unreadable';

/**
 * What a committed remote backup or WAL file consists of, from its manifest (`manifest.json` and the
 * artifacts it lists) or its record (the record and the stored file it names): file names in the
 * group's directory. `unreadable`: the manifest or record could not be read or parsed.
 */
export type GroupMembers = { files: readonly string[] } | { unreadable: string };

export interface CheckProblem {
  key: string;
  problem: CheckProblemKind;
  detail: string;
}

export interface CheckReport {
  repository: string;
  /**
   * Local objects not on the remote yet that are not problems: committed while the sync ran, or
   * (a check on its own) whole backups and WAL files no sync has shipped yet. The next sync ships them.
   */
  notShippedYet: number;
  /** Objects per kind: committed locally, and present on the remote. */
  counts: Record<ObjectKind, { local: number; remote: number }>;
  /** Objects whose content was read and hashed in this check. */
  contentChecked: number;
  /** Objects in an archive storage class, checked by size and recorded sha256 only (no read-back). */
  archived?: number;
  problems: CheckProblem[];
}

/**
 * The remote check. Every local object must be on the remote with the same size and sha256
 * (manifest.json: its own recorded sha256); every remote object must carry a recorded sha256 and,
 * where its content was hashed, match it; every remote object must belong to a committed backup or
 * WAL record on the remote (anything else is unknown). Counts alone never pass a check.
 */
export function checkRemote(input: {
  repository: string;
  local: readonly LocalObject[];
  remote: ReadonlyMap<string, RemoteEntry>;
  /** sha256 of the content, for the keys that were read back. */
  content: ReadonlyMap<string, string>;
  contentScope: ReadonlySet<string>;
  /**
   * Each committed remote group's members (key: `groupOf`), from the manifests and records: an
   * object of a group that its manifest does not list is `unexpected`, a listed one absent is
   * `missing`. A group not given here is judged by its commit marker alone.
   */
  members?: ReadonlyMap<string, GroupMembers>;
  /** Objects in an archive storage class: not read back (only counted). */
  archived?: ReadonlySet<string>;
  /**
   * When the sync read the local repository: objects committed after this (less a minute, for a
   * WAL push under way while it read) and missing remotely are not problems yet.
   */
  syncedAt?: string;
}): CheckReport {
  const { local, remote, content, contentScope } = input;
  const problems: CheckProblem[] = [];
  const settled = input.syncedAt ? new Date(input.syncedAt).getTime() - 60_000 : Infinity;
  let notShippedYet = 0;
  // A check on its own cannot know what the last sync saw: an object counts as missing only when
  // the remote holds part of what it belongs to (the backup's manifest, the WAL file's record or data).
  const remoteGroups = new Set([...remote.keys()].map(groupOf));
  const counts = Object.fromEntries(OBJECT_KINDS.map((k) => [k, { local: 0, remote: 0 }])) as CheckReport['counts'];
  for (const o of local) {
    counts[o.kind].local++;
    const r = remote.get(o.key);
    if (!r) {
      const unshipped = input.syncedAt
        ? new Date(o.committedAt).getTime() >= settled
        : !remoteGroups.has(groupOf(o.key));
      if (unshipped) notShippedYet++;
      else problems.push({ key: o.key, problem: 'missing', detail: `not on the remote (${o.bytes} bytes locally)` });
      continue;
    }
    if (o.marker) continue;
    if (r.bytes < o.bytes)
      problems.push({ key: o.key, problem: 'short', detail: `${r.bytes} bytes on the remote, ${o.bytes} locally` });
    else if (r.bytes !== o.bytes)
      problems.push({ key: o.key, problem: 'size', detail: `${r.bytes} bytes on the remote, ${o.bytes} locally` });
    else if (r.recordedSha256 !== undefined && r.recordedSha256 !== o.sha256) {
      problems.push({
        key: o.key,
        problem: 'differs',
        detail: `remote records sha256 ${r.recordedSha256}, local is ${o.sha256}`,
      });
    }
  }
  const known = knownRemoteKeys([...remote.keys()]);
  const members = input.members ?? new Map<string, GroupMembers>();
  const reportedMissing = new Set(problems.filter((p) => p.problem === 'missing').map((p) => p.key));
  for (const [group, m] of members) {
    if (!remoteGroups.has(group)) continue;
    if ('unreadable' in m) {
      problems.push({ key: markerOf(group), problem: 'unreadable', detail: m.unreadable });
      continue;
    }
    const dir = group.split('/')[1] === 'wal' ? group.slice(0, group.lastIndexOf('/')) : group;
    for (const file of m.files) {
      const key = `${dir}/${file}`;
      if (!remote.has(key) && !reportedMissing.has(key))
        problems.push({
          key,
          problem: 'missing',
          detail: `listed by ${markerOf(group).split('/').at(-1)} but not on the remote`,
        });
    }
  }
  for (const r of remote.values()) {
    const kind = kindOrUndefined(r.key);
    if (kind) counts[kind].remote++;
    if (!known.has(r.key)) {
      problems.push({
        key: r.key,
        problem: 'unknown',
        detail: 'belongs to no committed backup or WAL record on the remote',
      });
      continue;
    }
    const m = members.get(groupOf(r.key));
    if (m && 'files' in m && !m.files.includes(r.key.split('/').at(-1)!)) {
      problems.push({
        key: r.key,
        problem: 'unexpected',
        detail: `not listed by ${markerOf(groupOf(r.key)).split('/').at(-1)} (a foreign object in a backup's place, whatever sha256 it carries)`,
      });
      continue;
    }
    if (r.recordedSha256 === undefined) {
      problems.push({ key: r.key, problem: 'unrecorded', detail: 'carries no sha256' });
      continue;
    }
    if (!contentScope.has(r.key)) continue;
    const actual = content.get(r.key);
    if (actual === undefined)
      problems.push({ key: r.key, problem: 'missing', detail: 'disappeared while the check read it' });
    else if (actual !== r.recordedSha256)
      problems.push({
        key: r.key,
        problem: 'corrupt',
        detail: `content sha256 ${actual}, recorded ${r.recordedSha256}`,
      });
  }
  problems.sort((a, b) => a.key.localeCompare(b.key) || a.problem.localeCompare(b.problem));
  const archived = input.archived?.size ?? 0;
  return {
    repository: input.repository,
    notShippedYet,
    counts,
    contentChecked: contentScope.size,
    ...(archived > 0 ? { archived } : {}),
    problems,
  };
}

/** The commit marker of a group: a backup's manifest.json, a WAL file's record. */
function markerOf(group: string): string {
  return group.split('/')[1] === 'wal' ? `${group}.json` : `${group}/${MANIFEST_FILE}`;
}

/**
 * Which objects the check reads back and hashes: all remote objects (`full`) or the given ones,
 * except archived ones (GLACIER, DEEP_ARCHIVE, or INTELLIGENT_TIERING's archive tiers: GetObject
 * refuses them until restored), which are held to their size and recorded sha256 alone.
 */
export function planContentCheck(
  remote: ReadonlyMap<string, RemoteEntry>,
  keys: 'all' | readonly string[],
): { read: Set<string>; archived: Set<string> } {
  const wanted = keys === 'all' ? [...remote.keys()] : keys.filter((k) => remote.has(k));
  const read = new Set<string>();
  const archived = new Set<string>();
  for (const k of wanted) (isArchived(remote.get(k)!) ? archived : read).add(k);
  return { read, archived };
}

/** What an object belongs to: its backup directory, or its WAL file's name. */
export function groupOf(key: string): string {
  const parts = key.split('/');
  return parts[1] === 'wal' ? `${parts[0]}/wal/${walNameOf(parts[2] ?? '')}` : parts.slice(0, -1).join('/');
}

/** One line per problem, for failure messages and the CLI. */
export function describeProblems(report: CheckReport): string {
  return report.problems.map((p) => `${p.problem} ${p.key}: ${p.detail}`).join('\n');
}

function kindOrUndefined(key: string): ObjectKind | undefined {
  try {
    return objectKind(key);
  } catch {
    return undefined;
  }
}

/**
 * Remote objects that belong to something committed on the remote: files of a backup directory
 * whose manifest.json is there, and WAL files whose record is there (records themselves too).
 */
export function knownRemoteKeys(keys: readonly string[]): Set<string> {
  const all = new Set(keys);
  const known = new Set<string>();
  for (const key of keys) {
    const parts = key.split('/');
    const kind = parts[1];
    if (kind === 'logical' && parts.length === 5 && isBackupId(parts[3]!)) {
      if (all.has([...parts.slice(0, 4), MANIFEST_FILE].join('/'))) known.add(key);
    } else if (kind === 'base' && parts.length === 4 && isBackupId(parts[2]!)) {
      if (all.has([...parts.slice(0, 3), MANIFEST_FILE].join('/'))) known.add(key);
    } else if (kind === 'wal' && parts.length === 3) {
      if (all.has(`${parts[0]}/wal/${walNameOf(parts[2]!)}.json`)) known.add(key);
    }
  }
  return known;
}

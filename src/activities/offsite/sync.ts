// offsiteSync's activities: upload what a remote lacks, the remote's own retention, and the remote
// check. Every one is safe to repeat: the remote listing says what is done, uploads are atomic per
// object, and nothing on a remote is removed or overwritten because of local state.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../../config/index.js';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import { MANIFEST_FILE } from '../../lib/layout.js';
import { parseBaseManifest, parseLogicalManifest } from '../../lib/manifest.js';
import {
  checkRemote,
  describeProblems,
  groupOf,
  missingOnRemote,
  offsiteRetention,
  planContentCheck,
  planRemoteRetention,
  remoteBackups,
  walNameOf,
  type CheckReport,
  type GroupMembers,
  type LocalObject,
  type RemoteBackup,
  type RemoteEntry,
} from '../../lib/offsite.js';
import { recordOffsiteConfirmed } from '../../storage/offsiteConfirmed.js';
import { openRepository } from '../../storage/clusterRepository.js';
import { localInventory } from '../../storage/inventory.js';
import { offsiteNames } from '../../lib/offsiteNames.js';
import { withStore } from '../../storage/registry.js';
import { putAll, type Storage } from '../../storage/storage.js';

export interface OffsiteTarget {
  cluster: string;
  repository: string;
  /** Only the WAL archive: the frequent WAL-shipping runs. */
  walOnly?: boolean;
}

export interface SyncResult {
  repository: string;
  uploaded: number;
  uploadedBytes: number;
  /** Keys uploaded by this run (the quick check reads them back; in the workflow result: the first 20). */
  uploadedKeys: string[];
  /** More than KEYS_IN_HISTORY uploads: the keys are left out of history and the check reads everything. */
  keysOmitted?: boolean;
  alreadyThere: number;
  /** When this run read the local repository. */
  syncedAt: string;
}

export interface RetentionResult {
  repository: string;
  removedObjects: number;
  removed: { what: string; reason: string }[];
}

/** `full`: read back and hash every object; `quick`: sizes and recorded sha256 of all, content of the given keys. */
export type CheckDepth = 'full' | 'quick';

export function createOffsiteActivities({ config, env }: { config: Config; env: NodeJS.ProcessEnv }) {
  /**
   * The repositories to sync. `probe: false` (current workflows): names only, each repository is
   * probed on its own by probeOffsite, so one broken repository never stops the others. Runs
   * started before that probe every one here, failing on the first broken one.
   */
  async function planOffsite(input: { cluster: string; repositories?: string[]; probe?: boolean }): Promise<string[]> {
    const names = input.repositories ?? offsiteNames(config, input.cluster);
    if (names.length === 0)
      throw nonRetryable(
        ErrorType.InvalidInput,
        `cluster "${input.cluster}" has no offsite repository (add an s3 or rsync repository to the config)`,
      );
    if (input.probe !== false) for (const name of names) await probeOffsite({ repository: name });
    return names;
  }

  /** One repository checked to be usable: a misconfiguration fails before anything moves to it. */
  async function probeOffsite(input: { repository: string }): Promise<void> {
    await withStore(config, input.repository, env, (store) => store.probe()).catch((err: unknown) => {
      // Unreachable at the start is reported, not retried for hours: the next scheduled run tries again.
      if (err instanceof ApplicationFailure && err.type === ErrorType.OffsiteUnavailable)
        throw nonRetryable(ErrorType.OffsiteUnavailable, err.message);
      throw err;
    });
  }

  /**
   * A remote as this run sees it: its objects, and the committed local objects it should hold —
   * those its own retention keeps (a backup past the remote's age, or WAL below its oldest base
   * backup, is neither uploaded nor expected, so sync and retention never undo each other).
   */
  async function remoteView(store: Storage, input: OffsiteTarget, now = new Date()) {
    const repoConfig = config.repositories[input.repository];
    if (!repoConfig || repoConfig.type === 'local')
      throw nonRetryable(ErrorType.InvalidInput, `"${input.repository}" is not an offsite repository`);
    const repo = openRepository(config, input.cluster);
    const syncedAt = now.toISOString();
    const inventory = await localInventory(repo, input.cluster, { walOnly: input.walOnly });
    const remote = await store.list(`${input.cluster}/`);
    const localBase = new Map((await repo.baseBackups()).map((m) => [m.backupId, m]));
    const withWal = async (keys: string[]): Promise<RemoteBackup[]> => {
      const out: RemoteBackup[] = [];
      for (const b of remoteBackups(keys)) {
        const m = b.kind === 'base' ? localBase.get(b.backupId) : undefined;
        if (b.kind !== 'base') out.push(b);
        else
          out.push({
            ...b,
            wal: m
              ? { backupId: m.backupId, timeline: m.timeline, startLsn: m.startLsn }
              : await remoteBaseStart(store, b.dir),
          });
      }
      return out;
    };
    // What to upload: what the policy keeps once everything local is there too.
    const union = [
      ...new Set([
        ...remote.keys(),
        ...inventory.map((o) => o.key),
        ...[...localBase.keys()].map((id) => `${input.cluster}/base/${id}/manifest.json`),
      ]),
    ];
    const policy = offsiteRetention(repoConfig);
    const dropped = new Set(planRemoteRetention(union, await withWal(union), policy, now).remove);
    // What to remove: decided from what the remote holds alone (rule 7: never from local state).
    const remoteKeys = [...remote.keys()];
    const retention = planRemoteRetention(remoteKeys, await withWal(remoteKeys), policy, now);
    return { repo, remote, retention, syncedAt, inventory, local: inventory.filter((o) => !dropped.has(o.key)) };
  }

  async function syncToOffsite(input: OffsiteTarget): Promise<SyncResult> {
    const ctx = Context.current();
    return withStore(config, input.repository, env, async (store) => {
      const { repo, local, remote, syncedAt } = await remoteView(store, input);
      const missing = missingOnRemote(local, remote);
      const result: SyncResult = {
        repository: input.repository,
        uploaded: 0,
        uploadedBytes: 0,
        uploadedKeys: [],
        alreadyThere: local.length - missing.length,
        syncedAt,
      };
      // On a timer, not per progress event: a driver may report progress rarely (rsync) or never.
      let current = { key: '', bytes: 0 };
      const totalBytes = missing.reduce((sum, o) => sum + o.bytes, 0);
      const timer = setInterval(
        () =>
          ctx.heartbeat({
            phase: 'upload',
            repository: input.repository,
            object: current.key,
            objects: result.uploaded,
            of: missing.length,
            bytes: result.uploadedBytes + current.bytes,
            totalBytes,
          }),
        2000,
      );
      try {
        // One rsync and one ssh session per batch for rsync; one put per object for S3.
        await putAll(store, repo.root, missing, {
          signal: ctx.cancellationSignal,
          started: (object) => (current = { key: object.key, bytes: 0 }),
          progress: (bytes) => (current.bytes = bytes),
          committed: (object) => {
            current.bytes = 0;
            result.uploaded++;
            result.uploadedBytes += object.bytes;
            result.uploadedKeys.push(object.key);
          },
        });
      } finally {
        clearInterval(timer);
      }
      if (result.uploadedKeys.length > KEYS_IN_HISTORY) Object.assign(result, { uploadedKeys: [], keysOmitted: true });
      return result;
    });
  }

  /** The remote's own retention policy (days per repository), never driven by local state. */
  async function applyOffsiteRetention(input: OffsiteTarget): Promise<RetentionResult> {
    return withStore(config, input.repository, env, async (store) => {
      const { remote, retention } = await remoteView(store, input);
      const remove = retention.remove.filter((k) => remote.has(k));
      // Commit markers first, in their own call: a backup stops being one before its data goes.
      const markers = remove.filter(
        (k) => k.endsWith('/manifest.json') || (k.split('/')[1] === 'wal' && k.endsWith('.json')),
      );
      await store.remove(markers);
      await store.remove(remove.filter((k) => !markers.includes(k)));
      const removedDirs = new Set(remove.map((k) => k.slice(0, k.lastIndexOf('/'))));
      const removedWal = new Set(remove.map((k) => walNameOf(k.split('/').at(-1)!)));
      return {
        repository: input.repository,
        removedObjects: remove.length,
        removed: retention.reasons.filter((r) => removedDirs.has(r.what) || removedWal.has(r.what)),
      };
    });
  }

  /**
   * The remote check: every committed local object present with its size and sha256, every remote
   * object known and carrying a sha256, and content read back and hashed (all, or `keys`).
   * Any problem fails with a report that names each object.
   */
  async function checkOffsite(
    input: OffsiteTarget & { depth: CheckDepth; keys?: string[]; syncedAt?: string },
  ): Promise<CheckReport> {
    const ctx = Context.current();
    return withStore(config, input.repository, env, async (store) => {
      const { local, remote, inventory } = await remoteView(store, input);
      // Archived objects (GLACIER, DEEP_ARCHIVE, Intelligent-Tiering's archive tiers) are not read back (GetObject refuses them): size and recorded sha256 only.
      const { read: scope, archived } = planContentCheck(remote, input.depth === 'full' ? 'all' : (input.keys ?? []));
      const members = await remoteMembers(store, remote, inventory, { readManifests: !input.walOnly });
      let hashed = 0;
      const totalBytes = [...scope].reduce((sum, k) => sum + (remote.get(k)?.bytes ?? 0), 0);
      const timer = setInterval(
        () =>
          ctx.heartbeat({
            phase: 'check',
            repository: input.repository,
            objects: scope.size,
            bytesRead: hashed,
            totalBytes,
          }),
        2000,
      );
      let content: Map<string, string>;
      try {
        // An object S3 refuses as archived moves to the archived path (size and recorded sha256).
        content = await store.contentSha256(
          [...scope],
          (bytes) => (hashed = bytes),
          (key) => {
            scope.delete(key);
            archived.add(key);
          },
        );
      } finally {
        clearInterval(timer);
      }
      const report = checkRemote({
        repository: input.repository,
        local,
        remote,
        content,
        contentScope: scope,
        syncedAt: input.syncedAt,
        members,
        archived,
      });
      if (report.problems.length > 0) {
        const lines = describeProblems(report).split('\n');
        const shown = lines.slice(0, 40).join('\n') + (lines.length > 40 ? `\n... and ${lines.length - 40} more` : '');
        throw nonRetryable(
          ErrorType.OffsiteCheckFailed,
          `offsite repository "${input.repository}" failed its check (${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}):\n${shown}`,
        );
      }
      // Passed: local retention may now delete what this check saw offsite (never the only copy), and
      // what the remote's own policy does not keep (src/lib/offsiteConfirmed.ts says why that is safe).
      await recordOffsiteConfirmed(openRepository(config, input.cluster), input, inventory, local, remote);
      return report;
    });
  }

  /**
   * Drift for healthCheck and the metrics: committed local objects the remote lacks (what its own
   * retention would drop is not expected), by listing alone — nothing is read back.
   */
  async function offsiteDrift(
    input: { cluster: string; repository: string; graceHours: number },
    now = new Date(),
  ): Promise<{ missing: number; missingPastGrace: number }> {
    return withStore(config, input.repository, env, async (store) => {
      const { local, remote } = await remoteView(store, { cluster: input.cluster, repository: input.repository }, now);
      const missing = missingOnRemote(local, remote);
      const cutoff = now.getTime() - input.graceHours * 3_600_000;
      return {
        missing: missing.length,
        missingPastGrace: missing.filter((o) => new Date(o.committedAt).getTime() <= cutoff).length,
      };
    });
  }

  return { planOffsite, probeOffsite, syncToOffsite, applyOffsiteRetention, checkOffsite, offsiteDrift };
}

/** Above this many uploads, their keys stay out of workflow history (the activity result). */
const KEYS_IN_HISTORY = 5000;

/**
 * What each committed remote backup and WAL file consists of, for the check: a backup's artifacts
 * from its manifest (the local one's list when the backup is here too: a manifest's artifacts never
 * change after commit; else the remote's manifest, read), a WAL file's stored name from its local
 * record, or from the remote record when its group holds more than the record and one file.
 * (A WAL-only run knows no local backup: it reads no manifest.)
 */
async function remoteMembers(
  store: Storage,
  remote: ReadonlyMap<string, RemoteEntry>,
  inventory: readonly LocalObject[],
  options: { readManifests: boolean },
): Promise<Map<string, GroupMembers>> {
  const localFiles = new Map<string, string[]>();
  for (const o of inventory) {
    const group = groupOf(o.key);
    localFiles.set(group, [...(localFiles.get(group) ?? []), o.key.split('/').at(-1)!]);
  }
  const members = new Map<string, GroupMembers>();
  const keys = [...remote.keys()];
  for (const b of remoteBackups(keys)) {
    const files = localFiles.get(b.dir);
    // A WAL-only run's inventory has no backups: their manifests are read by the daily full check.
    if (!files && !options.readManifests) continue;
    members.set(
      b.dir,
      files
        ? { files }
        : await readRemoteList(store, `${b.dir}/${MANIFEST_FILE}`, (text) => {
            const m = b.kind === 'base' ? parseBaseManifest(text) : parseLogicalManifest(text);
            return [MANIFEST_FILE, ...m.artifacts.map((a) => a.name)];
          }),
    );
  }
  const walGroups = new Map<string, string[]>();
  for (const k of keys.filter((k) => k.split('/')[1] === 'wal'))
    walGroups.set(groupOf(k), [...(walGroups.get(groupOf(k)) ?? []), k]);
  for (const [group, groupKeys] of walGroups) {
    const record = `${group}.json`;
    if (!remote.has(record)) continue; // no record: `unknown` already
    const files = localFiles.get(group);
    if (files) members.set(group, { files });
    else if (groupKeys.length > 2) {
      members.set(
        group,
        await readRemoteList(store, record, (text) => [
          record.split('/').at(-1)!,
          String((JSON.parse(text) as { stored?: unknown }).stored),
        ]),
      );
    }
  }
  return members;
}

/** A small remote file (a manifest, a WAL record) read and turned into its list of members. */
async function readRemoteList(store: Storage, key: string, parse: (text: string) => string[]): Promise<GroupMembers> {
  const file = join(tmpdir(), `pgwarden-members-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  try {
    await store.get(key, file);
    return { files: parse(await readFile(file, 'utf8')) };
  } catch (err) {
    // Trouble reaching the remote is retried; a refusal or bad content is reported.
    if (err instanceof ApplicationFailure && !err.nonRetryable) throw err;
    return { unreadable: `cannot be read or parsed: ${(err as Error).message.split('\n')[0]}` };
  } finally {
    await rm(file, { force: true });
  }
}

/** Where a remote base backup's WAL starts, from its manifest on the remote. */
async function remoteBaseStart(store: Storage, dir: string): Promise<RemoteBackup['wal']> {
  const file = join(tmpdir(), `pgwarden-manifest-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  try {
    await store.get(`${dir}/manifest.json`, file);
    const m = parseBaseManifest(await readFile(file, 'utf8'));
    return { backupId: m.backupId, timeline: m.timeline, startLsn: m.startLsn };
  } catch {
    // Unreadable: retention then keeps every WAL file rather than guess.
    return undefined;
  } finally {
    await rm(file, { force: true });
  }
}

// offsiteSync's activities: upload what a remote lacks, the remote's own retention, and the remote
// check. Every one is safe to repeat: the remote listing says what is done, uploads are atomic per
// object, and nothing on a remote is removed or overwritten because of local state.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../../config/index.js';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import {
  checkRemote,
  describeProblems,
  missingOnRemote,
  planContentCheck,
  type CheckReport,
} from '../../lib/offsite.js';
import { walNameOf } from '../../lib/offsiteKeys.js';
import { recordOffsiteConfirmed } from '../../storage/offsiteConfirmed.js';
import { openRepository } from '../../storage/clusterRepository.js';
import { offsiteNames } from '../../lib/offsiteNames.js';
import { withStore } from '../../storage/registry.js';
import { putAll } from '../../storage/storage.js';
import { remoteMembers } from './remoteMembers.js';
import { remoteView, type OffsiteTarget } from './remoteView.js';

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

  async function syncToOffsite(input: OffsiteTarget): Promise<SyncResult> {
    const ctx = Context.current();
    return withStore(config, input.repository, env, async (store) => {
      const { repo, local, remote, syncedAt } = await remoteView(config, store, input);
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
      const { remote, retention } = await remoteView(config, store, input);
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
      const { local, remote, inventory } = await remoteView(config, store, input);
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
      const { local, remote } = await remoteView(
        config,
        store,
        { cluster: input.cluster, repository: input.repository },
        now,
      );
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

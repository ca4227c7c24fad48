// A remote as an offsite activity sees it (sync.ts): the remote's listing, the committed local
// objects it should hold, and what its own retention removes, decided from the remote alone.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Config } from '../../config/index.js';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import { parseBaseManifest } from '../../lib/manifest.js';
import type { LocalObject, RemoteEntry } from '../../lib/offsite.js';
import {
  offsiteRetention,
  planRemoteRetention,
  remoteBackups,
  type RemoteBackup,
  type RemoteRetentionDecision,
} from '../../lib/offsiteRetention.js';
import { openRepository, type ClusterRepository } from '../../storage/clusterRepository.js';
import { localInventory } from '../../storage/inventory.js';
import type { Storage } from '../../storage/storage.js';

export interface OffsiteTarget {
  cluster: string;
  repository: string;
  /** Only the WAL archive: the frequent WAL-shipping runs. */
  walOnly?: boolean;
}

export interface RemoteView {
  repo: ClusterRepository;
  /** The remote's objects under the cluster. */
  remote: Map<string, RemoteEntry>;
  /** What the remote's own retention removes. */
  retention: RemoteRetentionDecision;
  /** When this run read the local repository. */
  syncedAt: string;
  /** Every committed local object. */
  inventory: LocalObject[];
  /** The committed local objects the remote should hold. */
  local: LocalObject[];
}

/**
 * A remote as this run sees it: its objects, and the committed local objects it should hold —
 * those its own retention keeps (a backup past the remote's age, or WAL below its oldest base
 * backup, is neither uploaded nor expected, so sync and retention never undo each other).
 */
export async function remoteView(
  config: Config,
  store: Storage,
  input: OffsiteTarget,
  now = new Date(),
): Promise<RemoteView> {
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

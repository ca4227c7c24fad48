// The committed contents of a cluster's local repository, as offsite objects: every artifact a
// manifest lists (its sha256 from the manifest), the manifests themselves, and every committed WAL
// file with its record. Uncommitted leftovers (no manifest, no record) are never shipped.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { MANIFEST_FILE, walRecordName } from '../lib/layout.js';
import type { LocalObject } from '../lib/offsite.js';
import type { ObjectKind } from '../lib/offsiteKeys.js';
import type { LocalRepository } from './repository.js';
import { WalArchive } from './walArchive.js';

export interface InventoryOptions {
  /** Only the WAL archive (the frequent WAL-shipping runs). */
  walOnly?: boolean;
}

export async function localInventory(
  repo: LocalRepository,
  cluster: string,
  options: InventoryOptions = {},
): Promise<LocalObject[]> {
  const out: LocalObject[] = [];
  if (!options.walOnly) {
    for (const database of (await repo.storage.names(`${cluster}/logical`, 'dirs')).sort()) {
      for (const m of await repo.listLogicalBackups(cluster, database)) {
        out.push(...(await backupObjects(repo, 'logical', `${cluster}/logical/${database}/${m.backupId}`, m)));
      }
    }
    for (const m of await repo.listBaseBackups(cluster)) {
      out.push(...(await backupObjects(repo, 'base', `${cluster}/base/${m.backupId}`, m)));
    }
  }
  const archive = new WalArchive(repo, join(repo.root, cluster, 'wal'));
  for (const record of (await archive.list()).values()) {
    const committedAt = record.archivedAt;
    out.push({
      key: `${cluster}/wal/${record.stored}`,
      kind: 'wal',
      bytes: record.bytes,
      sha256: record.sha256,
      marker: false,
      committedAt,
    });
    out.push(await smallFile(repo, `${cluster}/wal/${walRecordName(record.name)}`, 'wal', false, committedAt));
  }
  return out;
}

async function backupObjects(
  repo: LocalRepository,
  kind: ObjectKind,
  dir: string,
  manifest: { finishedAt: string; artifacts: readonly { name: string; bytes: number; sha256: string }[] },
): Promise<LocalObject[]> {
  const committedAt = manifest.finishedAt;
  const objects: LocalObject[] = manifest.artifacts.map((a) => ({
    key: `${dir}/${a.name}`,
    kind,
    bytes: a.bytes,
    sha256: a.sha256,
    marker: false,
    committedAt,
  }));
  objects.push(await smallFile(repo, `${dir}/${MANIFEST_FILE}`, kind, true, committedAt));
  return objects;
}

/** Manifests and WAL records: small, hashed as they are now. */
async function smallFile(
  repo: LocalRepository,
  key: string,
  kind: ObjectKind,
  marker: boolean,
  committedAt: string,
): Promise<LocalObject> {
  const content = await repo.storage.read(key);
  return {
    key,
    kind,
    bytes: content.length,
    sha256: createHash('sha256').update(content).digest('hex'),
    marker,
    committedAt,
  };
}

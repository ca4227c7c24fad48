// What a cluster's repository holds, as healthCheck reports it: per database (and base) the newest
// and oldest committed backup and the newest good verification, and the bytes stored per kind.
import type { BackupStatus } from '../../lib/health.js';
import { isRestoreCopyName } from '../../lib/ids.js';
import type { ClusterRepository } from '../../storage/clusterRepository.js';

/** Newest and oldest committed backup, and newest good verification, per database (and base). */
export async function backupStatus(
  repo: ClusterRepository,
  databases: readonly string[] | undefined,
): Promise<BackupStatus[]> {
  // A restore's kept copies are not watched unless listed: a "*" backup no longer takes them, so
  // the backups an older one made of them would only age into alerts.
  const found = (await repo.logicalDatabases()).filter((d) => !isRestoreCopyName(d));
  const names = [...new Set([...(databases ?? []), ...found])].sort();
  const out: BackupStatus[] = [];
  for (const database of names) {
    const all = await repo.logicalBackups(database);
    // A database only in the repository (not in `databases`) that no backup is left of is not reported.
    if (all.length === 0 && !databases?.includes(database)) continue;
    out.push(summarise('logical', all, database));
  }
  const base = await repo.baseBackups();
  if (base.length > 0) out.push(summarise('base', base));
  return out;
}

/** Stored bytes of every committed backup of the cluster (the repository's use, per kind). */
export async function storedBytes(
  repo: ClusterRepository,
  backups: BackupStatus[],
): Promise<{ logical: number; base: number }> {
  const sum = (list: readonly { bytes: number }[]) => list.reduce((n, m) => n + m.bytes, 0);
  let logical = 0;
  for (const b of backups) if (b.kind === 'logical') logical += sum(await repo.logicalBackups(b.database!));
  return { logical, base: sum(await repo.baseBackups()) };
}

function summarise(
  kind: 'logical' | 'base',
  manifests: readonly {
    startedAt: string;
    finishedAt: string;
    bytes: number;
    verifications: { at: string; ok: boolean }[];
  }[],
  database?: string,
): BackupStatus {
  const newest = manifests.at(-1);
  const verified =
    manifests
      .flatMap((m) => m.verifications.filter((v) => v.ok).map((v) => v.at))
      .sort()
      .at(-1) ?? null;
  return {
    kind,
    database,
    lastAt: newest?.finishedAt ?? null,
    lastBytes: newest?.bytes ?? null,
    firstAt: manifests[0]?.startedAt ?? null,
    lastVerifiedAt: verified,
  };
}

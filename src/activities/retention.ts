// Applies the GFS retention policy (src/lib/retention.ts) to a database's logical backups and to a
// cluster's base backups.
// A backup in use by a running verification or restore carries an `.in-use-*` marker and is kept.
import { readdir, stat, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import { backupIdTime } from '../lib/ids.js';
import { applyRetention, type RetentionDecision } from '../lib/retention.js';
import { LocalRepository } from './repository.js';

/** Markers older than this are left by a crashed run and no longer protect the backup. */
const MARKER_TTL_MS = 24 * 3600_000;

export async function markInUse(dir: string, owner: string): Promise<() => Promise<void>> {
  const marker = join(dir, `.in-use-${owner.replace(/[^A-Za-z0-9_.-]/g, '_')}`);
  await writeFile(marker, new Date().toISOString());
  return () => rm(marker, { force: true });
}

async function inUse(dir: string): Promise<boolean> {
  const now = Date.now();
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith('.in-use-')) continue;
    const { mtimeMs } = await stat(join(dir, name));
    if (now - mtimeMs < MARKER_TTL_MS) return true;
  }
  return false;
}

export function createRetentionActivities({ config }: { config: Config }) {
  /** Deletes the backups the policy lets go, and says what it kept and why. Idempotent. */
  async function applyLogicalRetention(input: { cluster: string; database: string }): Promise<RetentionDecision> {
    const repo = LocalRepository.forCluster(config, input.cluster);
    const manifests = await repo.listLogicalBackups(input.cluster, input.database);
    const candidates = [];
    for (const m of manifests) {
      const dir = repo.logicalBackupDir(input.cluster, input.database, m.backupId);
      candidates.push({ backupId: m.backupId, time: backupIdTime(m.backupId)!, verified: m.verifications.some((v) => v.ok), inUse: await inUse(dir) });
    }
    const decision = applyRetention(candidates, config.retention);
    for (const d of decision.delete) {
      const dir = repo.logicalBackupDir(input.cluster, input.database, d.backupId);
      // The manifest goes first: from then on the directory is not a backup, whatever happens next.
      await rm(join(dir, 'manifest.json'), { force: true });
      await repo.removeDir(dir);
    }
    return decision;
  }
  /**
   * The same policy over the cluster's base backups, after each baseBackup. A base backup a PITR
   * is staging is in use. walMaintenance then lets go of the WAL only the deleted ones needed.
   */
  async function applyBaseRetention(input: { cluster: string }): Promise<RetentionDecision> {
    const repo = LocalRepository.forCluster(config, input.cluster);
    const candidates = [];
    for (const m of await repo.listBaseBackups(input.cluster)) {
      const dir = repo.baseBackupDir(input.cluster, m.backupId);
      candidates.push({ backupId: m.backupId, time: backupIdTime(m.backupId)!, verified: m.verifications.some((v) => v.ok), inUse: await inUse(dir) });
    }
    const decision = applyRetention(candidates, config.retention);
    for (const d of decision.delete) {
      const dir = repo.baseBackupDir(input.cluster, d.backupId);
      await rm(join(dir, 'manifest.json'), { force: true });
      await repo.removeDir(dir);
    }
    return decision;
  }

  return { applyLogicalRetention, applyBaseRetention };
}

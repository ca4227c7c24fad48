// Applies the GFS retention policy (src/lib/retention.ts) to a database's logical backups and to a
// cluster's base backups.
// A backup in use by a running verification or restore carries an `.in-use-*` marker and is kept.
import { readdir, stat, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import { backupIdTime } from '../lib/ids.js';
import { applyRetention, type RetentionDecision } from '../lib/retention.js';
import { parseWindow, planWalRetention, windowAnchor } from '../lib/walRetention.js';
import { offsiteGate } from '../storage/offsiteConfirmed.js';
import { inheritOwner, PRIVATE_FILE_MODE } from '../host/atomicFile.js';
import { openRepository, type ClusterRepository } from '../storage/clusterRepository.js';
import { recentTimelines } from '../storage/walArchive.js';

/** Markers older than this are left by a crashed run and no longer protect the backup. */
const MARKER_TTL_MS = 24 * 3600_000;

export async function markInUse(dir: string, owner: string): Promise<() => Promise<void>> {
  const marker = join(dir, `.in-use-${owner.replace(/[^A-Za-z0-9_.-]/g, '_')}`);
  await writeFile(marker, new Date().toISOString(), { mode: PRIVATE_FILE_MODE });
  await inheritOwner(marker);
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

/** What local retention decided, plus what it keeps only until the offsite check has confirmed it. */
export interface LocalRetentionResult extends RetentionDecision {
  dryRun?: boolean;
  /** Would go, but an offsite repository has not confirmed it yet: kept for now, counted. */
  waitingOffsite?: { backupId: string; reason: string; repositories: string[] }[];
}

export function createRetentionActivities({ config, env = process.env }: { config: Config; env?: NodeJS.ProcessEnv }) {
  /**
   * Deletes what the policy lets go and every offsite repository of the cluster has confirmed
   * (src/storage/offsiteConfirmed.ts); says what it kept and why. Idempotent.
   */
  async function retire(
    repo: ClusterRepository,
    decision: RetentionDecision,
    dirOf: (backupId: string) => string,
    dryRun?: boolean,
  ): Promise<LocalRetentionResult> {
    const awaiting = await offsiteGate(config, repo, repo.cluster);
    const result: LocalRetentionResult = { ...decision, delete: [], waitingOffsite: [], ...(dryRun ? { dryRun } : {}) };
    for (const d of decision.delete) {
      const dir = dirOf(d.backupId);
      const repositories = awaiting(repo.keyOf(dir));
      if (repositories.length > 0) {
        result.waitingOffsite!.push({ ...d, repositories });
        continue;
      }
      result.delete.push(d);
      if (dryRun) continue;
      // The manifest goes first: from then on the directory is not a backup, whatever happens next.
      await repo.storage.remove([repo.keyOf(join(dir, 'manifest.json'))]);
      await repo.removeDir(dir);
    }
    return result;
  }

  async function applyLogicalRetention(input: {
    cluster: string;
    database: string;
    dryRun?: boolean;
  }): Promise<LocalRetentionResult> {
    const repo = openRepository(config, input.cluster);
    const manifests = await repo.logicalBackups(input.database);
    const candidates = [];
    for (const m of manifests) {
      const dir = repo.logical(input.database, m.backupId);
      candidates.push({
        backupId: m.backupId,
        time: backupIdTime(m.backupId)!,
        verified: m.verifications.some((v) => v.ok),
        inUse: await inUse(dir),
      });
    }
    const { base: _base, ...policy } = config.retention;
    const decision = applyRetention(candidates, policy);
    return retire(repo, decision, (id) => repo.logical(input.database, id), input.dryRun);
  }

  /**
   * The base backups' own policy (`retention.base`), after each baseBackup; the backup the PITR
   * window starts from is kept too. A base backup a PITR is staging is in use. walMaintenance then
   * lets go of the WAL only the deleted ones needed.
   */
  async function applyBaseRetention(input: { cluster: string; dryRun?: boolean }): Promise<LocalRetentionResult> {
    const repo = openRepository(config, input.cluster);
    const manifests = await repo.baseBackups();
    const ms = parseWindow(config.walRetention.window)!;
    const now = new Date();
    const anchor = windowAnchor(manifests, ms, now);
    // After a PITR to a point below the anchor's start, the window's continuous WAL starts at an
    // older backup on the new timeline's path (WAL retention's keepFrom): that one is kept too.
    const archive = repo.wal;
    const records = await archive.list();
    const timelines = await recentTimelines(config, env, archive, records, anchor);
    const keepFrom = timelines.length
      ? planWalRetention([...records.keys()], manifests, { ms, now, timelines }).keepFrom?.backupId
      : undefined;
    const candidates = [];
    for (const m of manifests) {
      const dir = repo.base(m.backupId);
      candidates.push({
        backupId: m.backupId,
        time: backupIdTime(m.backupId)!,
        verified: m.verifications.some((v) => v.ok),
        inUse: await inUse(dir),
        pitrWindow: m.backupId === anchor?.backupId || m.backupId === keepFrom,
      });
    }
    const decision = applyRetention(candidates, config.retention.base);
    return retire(repo, decision, (id) => repo.base(id), input.dryRun);
  }

  /** Databases with logical backups in the cluster's repository (for `pgwarden retention` without --database). */
  async function listBackedUpDatabases(input: { cluster: string }): Promise<string[]> {
    const repo = openRepository(config, input.cluster);
    const entries = await repo.storage.names(`${input.cluster}/logical`, 'dirs').catch(() => []);
    return entries.sort();
  }

  return { applyLogicalRetention, applyBaseRetention, listBackedUpDatabases };
}

// Restore from offsite: when the local repository lacks what a verify, restore or PITR needs (a new
// host with an empty disk), fetch it from the offsite repositories into the local repository, each
// file checked against its sha256 and committed like a local write (data first, manifest or WAL
// record last), so every later step reads it exactly as if it had been written here.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import type { Config } from '../../config/index.js';
import { MANIFEST_FILE } from '../../lib/layout.js';
import { parseBaseManifest, parseLogicalManifest } from '../../lib/manifest.js';
import { remoteBackups } from '../../lib/offsiteRetention.js';
import { walNameOf } from '../../lib/offsiteKeys.js';
import type { RecoveryTarget } from '../../lib/recovery.js';
import { chooseBaseBackup } from '../../lib/recoveryPath.js';
import { parseLsn, parseSegmentName, segmentOf } from '../../lib/wal.js';
import { openRepository, type ClusterRepository } from '../../storage/clusterRepository.js';
import { readHistories, WalArchive } from '../../storage/walArchive.js';
import { archiveWaitOf, whenReadable } from './archived.js';
import { fetchBackupDir, fetchWalFile } from './download.js';
import { offsiteNames } from '../../lib/offsiteNames.js';
import { withStore } from '../../storage/registry.js';
import type { Storage } from '../../storage/storage.js';

export interface FetchedFromOffsite {
  /** The offsite repository it came from; undefined when nothing had to be fetched. */
  repository?: string;
  backupId?: string;
  files: number;
  bytes: number;
}

export function createOffsiteFetchActivities({ config, env }: { config: Config; env: NodeJS.ProcessEnv }) {
  /** A logical backup (the given one, else the newest) when the local repository has none to offer. */
  async function fetchLogicalFromOffsite(input: {
    cluster: string;
    database: string;
    backupId?: string;
  }): Promise<FetchedFromOffsite> {
    return withHeartbeat(() => fetchLogical(input));
  }

  async function fetchLogical(input: {
    cluster: string;
    database: string;
    backupId?: string;
  }): Promise<FetchedFromOffsite> {
    const repo = openRepository(config, input.cluster);
    const local = await repo.logicalBackups(input.database);
    if (input.backupId ? local.some((m) => m.backupId === input.backupId) : local.length > 0)
      return { files: 0, bytes: 0 };
    for (const name of offsiteNames(config, input.cluster)) {
      const found = await withStore(config, name, env, async (store) => {
        const keys = [...(await store.list(`${input.cluster}/logical/${input.database}/`)).keys()];
        const ids = remoteBackups(keys)
          .map((b) => b.backupId)
          .filter((id) => !input.backupId || id === input.backupId);
        const backupId = ids.sort().at(-1);
        if (!backupId) return undefined;
        const dir = `${input.cluster}/logical/${input.database}/${backupId}`;
        return {
          repository: name,
          backupId,
          ...(await fetchBackupDir(store, repo, dir, parseLogicalManifest, archiveWaitOf(config, name))),
        };
      });
      if (found) return found;
    }
    return { files: 0, bytes: 0 };
  }

  /**
   * What a PITR needs that is only offsite: the base backup plan will choose for the target, among
   * the local ones and the remote's (the remote's manifests are read for that), when only the
   * remote has it; every history file; and every WAL file from the oldest local base backup's start
   * on that the local archive lacks. Without a target: as for `latest`.
   */
  async function fetchRecoveryFromOffsite(input: {
    cluster: string;
    target?: RecoveryTarget;
  }): Promise<FetchedFromOffsite> {
    return withHeartbeat(() => fetchRecovery(input));
  }

  async function fetchRecovery(input: { cluster: string; target?: RecoveryTarget }): Promise<FetchedFromOffsite> {
    const repo = openRepository(config, input.cluster);
    const archive = repo.wal;
    const total: FetchedFromOffsite = { files: 0, bytes: 0 };
    const add = (name: string, got: { files: number; bytes: number }) => {
      total.repository ??= name;
      total.files += got.files;
      total.bytes += got.bytes;
    };
    const localHasBase = (await repo.baseBackups()).length > 0;
    for (const name of offsiteNames(config, input.cluster)) {
      await withStore(config, name, env, async (store) => {
        const remote = await store.list(`${input.cluster}/`).catch((err: unknown) => {
          // With a base backup here, an unreachable offsite only means nothing extra: plan decides.
          if (localHasBase) return undefined;
          throw err;
        });
        if (!remote) return;
        const walKeys = [...remote.keys()].filter((k) => k.split('/')[1] === 'wal' && k.endsWith('.json')).sort();
        // History files first: they say which timeline's path (and so which base backup) the target is on.
        const had = await archive.list();
        for (const key of walKeys.filter(
          (k) => walNameOf(k.split('/')[2]!).endsWith('.history') && !had.has(walNameOf(k.split('/')[2]!)),
        )) {
          add(name, await fetchWalFile(store, archive, key));
        }
        const chosen = await chooseRemoteBase(store, repo, archive, input, [...remote.keys()], walKeys);
        if (chosen) {
          const got = await fetchBackupDir(store, repo, chosen.dir, parseBaseManifest, archiveWaitOf(config, name));
          add(name, got);
          total.backupId = chosen.backupId;
        }
        const oldest = (await repo.baseBackups())
          .map((m) => segmentOf(parseLsn(m.startLsn)))
          .sort((a, b) => (a < b ? -1 : 1))[0];
        if (oldest === undefined) return;
        const have = await archive.list();
        const needed = walKeys.filter((key) => {
          const walName = walNameOf(key.split('/')[2]!);
          const segment = parseSegmentName(walName.slice(0, 24))?.segment;
          return !have.has(walName) && (segment === undefined || walName.endsWith('.history') || segment >= oldest);
        });
        // WAL a lifecycle rule moved to an archive class: every restore asked for at once, then waited for.
        const names = new Set(needed.map((k) => walNameOf(k.split('/')[2]!)));
        await whenReadable(
          store,
          [...remote.keys()].filter((k) => k.split('/')[1] === 'wal' && names.has(walNameOf(k.split('/')[2]!))),
          archiveWaitOf(config, name),
        );
        for (const key of needed) add(name, await fetchWalFile(store, archive, key));
      });
    }
    return total;
  }

  /**
   * The remote base backup to fetch: the one plan would choose for the target from the local and
   * the remote base backups together, when only the remote has it. A target plan will refuse
   * anyway (bad, or before every backup) falls back to the newest remote one when the local
   * repository has none, and plan then says why.
   */
  async function chooseRemoteBase(
    store: Storage,
    repo: ClusterRepository,
    archive: WalArchive,
    input: { cluster: string; target?: RecoveryTarget },
    keys: string[],
    walKeys: string[],
  ): Promise<{ dir: string; backupId: string } | undefined> {
    const local = await repo.baseBackups();
    const remoteOnly = remoteBackups(keys).filter(
      (b) => b.kind === 'base' && !local.some((m) => m.backupId === b.backupId),
    );
    if (remoteOnly.length === 0) return undefined;
    const scratch = await mkdtemp(join(tmpdir(), 'pgwarden-offsite-manifests-'));
    try {
      const remote = [];
      for (const b of remoteOnly) {
        await store.get(`${b.dir}/${MANIFEST_FILE}`, join(scratch, b.backupId));
        remote.push({ ...parseBaseManifest(await readFile(join(scratch, b.backupId), 'utf8')), dir: b.dir });
      }
      const walNames = [...(await archive.list()).keys(), ...walKeys.map((k) => walNameOf(k.split('/')[2]!))];
      let choice: { dir?: string; backupId: string } | undefined;
      try {
        const histories = await readHistories(config, env, archive, (await archive.list()).keys());
        choice = chooseBaseBackup({
          target: input.target ?? { latest: true },
          backups: [...local, ...remote],
          walNames,
          histories,
          now: new Date(),
        }).backup;
      } catch {
        choice = undefined;
      }
      if (!choice && local.length === 0) choice = remote.at(-1);
      return choice && 'dir' in choice && choice.dir ? { dir: choice.dir, backupId: choice.backupId } : undefined;
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  return { fetchLogicalFromOffsite, fetchRecoveryFromOffsite };
}

/** Heartbeats on a timer while `fn` runs: a single large download reports no progress of its own. */
async function withHeartbeat<T>(fn: () => Promise<T>): Promise<T> {
  const ctx = Context.current();
  const timer = setInterval(() => ctx.heartbeat({ phase: 'fetch-offsite' }), 2000);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}

// Restore from offsite: when the local repository lacks what a verify, restore or PITR needs (a new
// host with an empty disk), fetch it from the offsite repositories into the local repository, each
// file checked against its sha256 and committed like a local write (data first, manifest or WAL
// record last), so every later step reads it exactly as if it had been written here.
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Context } from '@temporalio/activity';
import type { Config } from '../../config/index.js';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import { MANIFEST_FILE, PARTIAL_SUFFIX, walRecordName } from '../../lib/layout.js';
import { parseBaseManifest, parseLogicalManifest, type BaseManifest, type LogicalManifest } from '../../lib/manifest.js';
import { remoteBackups, walNameOf } from '../../lib/offsite.js';
import { parseLsn, parseSegmentName, segmentOf } from '../../lib/wal.js';
import { fsyncPath, hashFile } from '../pipeline.js';
import { LocalRepository } from '../repository.js';
import { WalArchive } from '../walArchive.js';
import { offsiteNames, withStore } from './stores.js';
import type { OffsiteStore } from './store.js';

export interface FetchedFromOffsite {
  /** The offsite repository it came from; undefined when nothing had to be fetched. */
  repository?: string;
  backupId?: string;
  files: number;
  bytes: number;
}

export function createOffsiteFetchActivities({ config, env }: { config: Config; env: NodeJS.ProcessEnv }) {
  /** A logical backup (the given one, else the newest) when the local repository has none to offer. */
  async function fetchLogicalFromOffsite(input: { cluster: string; database: string; backupId?: string }): Promise<FetchedFromOffsite> {
    return withHeartbeat(() => fetchLogical(input));
  }

  async function fetchLogical(input: { cluster: string; database: string; backupId?: string }): Promise<FetchedFromOffsite> {
    const repo = LocalRepository.forCluster(config, input.cluster);
    const local = await repo.listLogicalBackups(input.cluster, input.database);
    if (input.backupId ? local.some((m) => m.backupId === input.backupId) : local.length > 0) return { files: 0, bytes: 0 };
    for (const name of offsiteNames(config, input.cluster)) {
      const found = await withStore(config, name, env, async (store) => {
        const keys = [...(await store.list(`${input.cluster}/logical/${input.database}/`)).keys()];
        const ids = remoteBackups(keys).map((b) => b.backupId).filter((id) => !input.backupId || id === input.backupId);
        const backupId = ids.sort().at(-1);
        if (!backupId) return undefined;
        const dir = `${input.cluster}/logical/${input.database}/${backupId}`;
        return { repository: name, backupId, ...(await fetchBackupDir(store, repo, dir, parseLogicalManifest)) };
      });
      if (found) return found;
    }
    return { files: 0, bytes: 0 };
  }

  /**
   * What a PITR needs that is only offsite: the newest base backup when the local repository has
   * none, and every WAL file from the oldest local base backup's start on (history files always)
   * that the local archive lacks.
   */
  async function fetchRecoveryFromOffsite(input: { cluster: string }): Promise<FetchedFromOffsite> {
    return withHeartbeat(() => fetchRecovery(input));
  }

  async function fetchRecovery(input: { cluster: string }): Promise<FetchedFromOffsite> {
    const repo = LocalRepository.forCluster(config, input.cluster);
    const archive = WalArchive.forCluster(config, input.cluster);
    const total: FetchedFromOffsite = { files: 0, bytes: 0 };
    const localHasBase = (await repo.listBaseBackups(input.cluster)).length > 0;
    for (const name of offsiteNames(config, input.cluster)) {
      await withStore(config, name, env, async (store) => {
        const remote = await store.list(`${input.cluster}/`).catch((err: unknown) => {
          // With a base backup here, an unreachable offsite only means nothing extra: plan decides.
          if (localHasBase) return undefined;
          throw err;
        });
        if (!remote) return;
        if ((await repo.listBaseBackups(input.cluster)).length === 0) {
          const newest = remoteBackups([...remote.keys()]).filter((b) => b.kind === 'base').at(-1);
          if (newest) {
            const got = await fetchBackupDir(store, repo, newest.dir, parseBaseManifest);
            Object.assign(total, { repository: name, backupId: newest.backupId, files: total.files + got.files, bytes: total.bytes + got.bytes });
          }
        }
        const oldest = (await repo.listBaseBackups(input.cluster))
          .map((m) => segmentOf(parseLsn(m.startLsn)))
          .sort((a, b) => (a < b ? -1 : 1))[0];
        if (oldest === undefined) return;
        const have = await archive.list();
        for (const key of [...remote.keys()].filter((k) => k.split('/')[1] === 'wal' && k.endsWith('.json')).sort()) {
          const walName = walNameOf(key.split('/')[2]!);
          if (have.has(walName)) continue;
          const segment = parseSegmentName(walName.slice(0, 24))?.segment;
          if (segment !== undefined && !walName.endsWith('.history') && segment < oldest) continue;
          const got = await fetchWalFile(store, archive, key);
          total.repository ??= name;
          total.files += got.files;
          total.bytes += got.bytes;
        }
      });
    }
    return total;
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

/** A backup directory: manifest read first (to know what to expect), artifacts checked, manifest committed last. */
async function fetchBackupDir(
  store: OffsiteStore,
  repo: LocalRepository,
  dir: string,
  parse: (json: string) => LogicalManifest | BaseManifest,
): Promise<{ files: number; bytes: number }> {
  const localDir = join(repo.root, dir);
  await repo.prepareDir(localDir);
  const manifestPartial = join(localDir, MANIFEST_FILE + PARTIAL_SUFFIX);
  await store.get(`${dir}/${MANIFEST_FILE}`, manifestPartial);
  const manifest = parse(await readFile(manifestPartial, 'utf8'));
  // Names come from the remote: each must be one plain file name, never a path out of the directory.
  for (const artifact of manifest.artifacts) assertPlainName(store.name, artifact.name);
  let bytes = 0;
  for (const artifact of manifest.artifacts) {
    await fetchChecked(store, `${dir}/${artifact.name}`, join(localDir, artifact.name), artifact.sha256, store.name);
    bytes += artifact.bytes;
  }
  await fsyncPath(manifestPartial);
  await rename(manifestPartial, join(localDir, MANIFEST_FILE));
  await fsyncPath(localDir);
  return { files: manifest.artifacts.length + 1, bytes };
}

/** One archived WAL file: its record read first, the data checked against it, the record committed last. */
async function fetchWalFile(store: OffsiteStore, archive: WalArchive, recordKey: string): Promise<{ files: number; bytes: number }> {
  await mkdir(archive.dir, { recursive: true });
  const recordFile = join(archive.dir, recordKey.split('/').at(-1)!);
  const partial = recordFile + PARTIAL_SUFFIX;
  await store.get(recordKey, partial);
  const record = JSON.parse(await readFile(partial, 'utf8')) as { name: string; stored: string; sha256: string; bytes: number };
  assertPlainName(store.name, record.stored);
  if (walRecordName(record.name) !== recordKey.split('/').at(-1) || walNameOf(record.stored) !== record.name) {
    await rm(partial, { force: true });
    throw nonRetryable(ErrorType.IntegrityError, `offsite repository "${store.name}": ${recordKey} describes ${record.name}`);
  }
  await fetchChecked(store, `${dirname(recordKey)}/${record.stored}`, join(archive.dir, record.stored), record.sha256, store.name);
  await fsyncPath(partial);
  await rename(partial, recordFile);
  await fsyncPath(archive.dir);
  return { files: 2, bytes: record.bytes };
}

/** Downloads to `<path>.partial`, checks the sha256, then renames into place. */
async function fetchChecked(store: OffsiteStore, key: string, path: string, sha256: string, repository: string): Promise<void> {
  const partial = path + PARTIAL_SUFFIX;
  await store.get(key, partial);
  const got = await hashFile(partial);
  if (got.sha256 !== sha256) {
    await rm(partial, { force: true });
    throw nonRetryable(ErrorType.IntegrityError, `offsite repository "${repository}": ${key} has sha256 ${got.sha256}, its manifest says ${sha256}`);
  }
  await fsyncPath(partial);
  await rename(partial, path);
}

function assertPlainName(repository: string, name: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name) || name.includes('..')) {
    throw nonRetryable(ErrorType.IntegrityError, `offsite repository "${repository}" names a file "${name}": not a plain file name, refused`);
  }
}

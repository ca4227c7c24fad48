// Downloads from an offsite repository into the local repository (fetch.ts): each file checked
// against its sha256, written private as .partial and renamed into place, the commit marker
// (a backup's manifest, a WAL file's record) committed last.
import { chmod, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import { MANIFEST_FILE, PARTIAL_SUFFIX, walRecordName } from '../../lib/layout.js';
import type { BaseManifest, LogicalManifest } from '../../lib/manifest.js';
import { walNameOf } from '../../lib/offsiteKeys.js';
import { inheritOwner, mkdirPrivate, PRIVATE_FILE_MODE, fsyncPath } from '../../host/atomicFile.js';
import { hashFile } from '../../stream/pipeline.js';
import type { LocalRepository } from '../../storage/repository.js';
import type { WalArchive } from '../../storage/walArchive.js';
import type { Storage } from '../../storage/storage.js';
import { whenReadable, type ArchiveWait } from './archived.js';

/** A backup directory: manifest read first (to know what to expect), artifacts checked, manifest committed last. */
export async function fetchBackupDir(
  store: Storage,
  repo: LocalRepository,
  dir: string,
  parse: (json: string) => LogicalManifest | BaseManifest,
  wait: ArchiveWait,
): Promise<{ files: number; bytes: number }> {
  const localDir = join(repo.root, dir);
  await repo.prepareDir(localDir);
  const manifestPartial = join(localDir, MANIFEST_FILE + PARTIAL_SUFFIX);
  await whenReadable(store, [`${dir}/${MANIFEST_FILE}`], wait);
  await getPrivate(store, `${dir}/${MANIFEST_FILE}`, manifestPartial);
  const manifest = parse(await readFile(manifestPartial, 'utf8'));
  // Names come from the remote: each must be one plain file name, never a path out of the directory.
  for (const artifact of manifest.artifacts) assertPlainName(store.name, artifact.name);
  // Artifacts a lifecycle rule moved to GLACIER / DEEP_ARCHIVE: restored (and waited for) before any download.
  await whenReadable(
    store,
    manifest.artifacts.map((a) => `${dir}/${a.name}`),
    wait,
  );
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
export async function fetchWalFile(
  store: Storage,
  archive: WalArchive,
  recordKey: string,
): Promise<{ files: number; bytes: number }> {
  await mkdirPrivate(archive.dir);
  const recordFile = join(archive.dir, recordKey.split('/').at(-1)!);
  const partial = recordFile + PARTIAL_SUFFIX;
  await getPrivate(store, recordKey, partial);
  const record = JSON.parse(await readFile(partial, 'utf8')) as {
    name: string;
    stored: string;
    sha256: string;
    bytes: number;
  };
  assertPlainName(store.name, record.stored);
  if (walRecordName(record.name) !== recordKey.split('/').at(-1) || walNameOf(record.stored) !== record.name) {
    await rm(partial, { force: true });
    throw nonRetryable(
      ErrorType.IntegrityError,
      `offsite repository "${store.name}": ${recordKey} describes ${record.name}`,
    );
  }
  await fetchChecked(
    store,
    `${dirname(recordKey)}/${record.stored}`,
    join(archive.dir, record.stored),
    record.sha256,
    store.name,
  );
  await fsyncPath(partial);
  await rename(partial, recordFile);
  await fsyncPath(archive.dir);
  return { files: 2, bytes: record.bytes };
}

/** Downloads to `<path>.partial`, checks the sha256, then renames into place. */
async function fetchChecked(
  store: Storage,
  key: string,
  path: string,
  sha256: string,
  repository: string,
): Promise<void> {
  const partial = path + PARTIAL_SUFFIX;
  await getPrivate(store, key, partial);
  const got = await hashFile(partial);
  if (got.sha256 !== sha256) {
    await rm(partial, { force: true });
    throw nonRetryable(
      ErrorType.IntegrityError,
      `offsite repository "${repository}": ${key} has sha256 ${got.sha256}, its manifest says ${sha256}`,
    );
  }
  await fsyncPath(partial);
  await rename(partial, path);
}

/** A download into the local repository: 0600 and, as root, owned like its directory, before it is renamed into place. */
async function getPrivate(store: Storage, key: string, partial: string): Promise<void> {
  await store.get(key, partial);
  await chmod(partial, PRIVATE_FILE_MODE);
  await inheritOwner(partial);
}

function assertPlainName(repository: string, name: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name) || name.includes('..')) {
    throw nonRetryable(
      ErrorType.IntegrityError,
      `offsite repository "${repository}" names a file "${name}": not a plain file name, refused`,
    );
  }
}

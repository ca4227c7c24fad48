// The backup repository layout (DESIGN.md, "The backup repository"). Pure string paths with '/'
// so workflows can name locations without importing node:path.

export const MANIFEST_FILE = 'manifest.json';
export const PARTIAL_SUFFIX = '.partial';

export function joinPath(...parts: string[]): string {
  return parts
    .map((p, i) => (i === 0 ? p.replace(/\/+$/, '') : p.replace(/^\/+|\/+$/g, '')))
    .filter((p, i) => i === 0 || p.length > 0)
    .join('/');
}

export function logicalDatabaseDir(repository: string, cluster: string, database: string): string {
  return joinPath(repository, cluster, 'logical', database);
}

export function logicalBackupDir(repository: string, cluster: string, database: string, backupId: string): string {
  return joinPath(logicalDatabaseDir(repository, cluster, database), backupId);
}

/** Stored artifact names: compression and encryption show in the suffix, like the WAL archive's. */
export function artifactName(base: string, compression: 'zstd' | 'none', encrypted: boolean): string {
  return `${base}${compression === 'zstd' ? '.zst' : ''}${encrypted ? '.gpg' : ''}`;
}

export function walArchiveDir(repository: string, cluster: string): string {
  return joinPath(repository, cluster, 'wal');
}

export function baseBackupDir(repository: string, cluster: string, backupId: string): string {
  return joinPath(repository, cluster, 'base', backupId);
}

/**
 * Each archived WAL file `<name>[.zst][.gpg]` has a record `<name>.json` beside it, written after
 * it: the commit marker (a stored file without one is an interrupted push), and what wal-push needs
 * to tell an identical re-push from a different file without the private key.
 */
export function walRecordName(walFile: string): string {
  return `${walFile}.json`;
}

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

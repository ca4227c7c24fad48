// Offsite objects by their keys, repository-relative paths: `<cluster>/logical/<db>/<id>/<file>`,
// `<cluster>/base/<id>/<file>`, `<cluster>/wal/<file>`.

/** Which part of the repository an object belongs to (storage class per kind, counts per kind in the check). */
export type ObjectKind = 'logical' | 'base' | 'wal';
export const OBJECT_KINDS: readonly ObjectKind[] = ['logical', 'base', 'wal'];

export function objectKind(key: string): ObjectKind {
  const kind = key.split('/')[1];
  if (kind === 'logical' || kind === 'base' || kind === 'wal') return kind;
  throw new Error(`not a repository key: ${key}`);
}

/** The WAL file a stored WAL object or record belongs to: `<name>[.zst][.gpg]` or `<name>.json` → `<name>`. */
export function walNameOf(file: string): string {
  return file.replace(/\.json$/, '').replace(/(\.zst)?(\.gpg)?$/, '');
}

// Which backups `verifyBackup` with database "*" verifies. Pure.

export interface BackupRef {
  database: string;
  backupId: string;
  /** Taken by a `"*"` run (manifest `allDatabases`): every database of that run shares its backupId. */
  allDatabases?: boolean;
}

/**
 * The backups of the newest `"*"` run, one per database it took, by database name. A repository
 * whose backups predate the `allDatabases` record has no such run: then the newest backup of
 * every database in it (`run` undefined says so).
 */
export function backupsOfNewestRun(backups: readonly BackupRef[]): {
  run?: string;
  targets: { database: string; backupId: string }[];
} {
  const runs = backups
    .filter((b) => b.allDatabases)
    .map((b) => b.backupId)
    .sort();
  const run = runs.at(-1);
  const byDatabase = new Map<string, string>();
  for (const b of backups) {
    if (run !== undefined ? b.allDatabases && b.backupId === run : (byDatabase.get(b.database) ?? '') < b.backupId)
      byDatabase.set(b.database, b.backupId);
  }
  const targets = [...byDatabase]
    .map(([database, backupId]) => ({ database, backupId }))
    .sort((a, b) => (a.database < b.database ? -1 : a.database > b.database ? 1 : 0));
  return { ...(run !== undefined ? { run } : {}), targets };
}

// How much free space a logical backup needs before it starts.

/**
 * The expected stored size: the previous backup of the same database when there is one (dumps
 * grow slowly), with 50% headroom; otherwise half of pg_database_size, since a compressed dump
 * holds no indexes, no bloat and no free space. Always at least 64 MiB of slack.
 */
export function expectedBackupBytes(databaseSizeBytes: number, previousBackupBytes?: number): number {
  const slack = 64 * 1024 * 1024;
  if (previousBackupBytes !== undefined && previousBackupBytes > 0) {
    return Math.ceil(previousBackupBytes * 1.5) + slack;
  }
  return Math.ceil(databaseSizeBytes * 0.5) + slack;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

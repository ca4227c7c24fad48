// The recovery settings pgwarden writes into a data directory's postgresql.auto.conf, and those of
// a scratch server (a rehearsal's, an in-place recovery's replay before the approval).
import { existsSync } from 'node:fs';
import { chmod, chown, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../host/atomicFile.js';

/** The header of PITR's block: every write (the replay before the approval, the recovery) replaces the one before. */
export const RECOVERY_BLOCK_HEADER = '\n# pgwarden point-in-time recovery\n';

/**
 * A scratch server's own settings: never the live cluster's archive, port or log. Everything on
 * stderr goes into pg_ctl's log file, never the live cluster's log_directory.
 */
export function scratchSettings(port: number, socketDirectory: string): Record<string, string> {
  return {
    port: String(port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: socketDirectory,
    archive_mode: 'off',
    logging_collector: 'off',
    log_destination: 'stderr',
  };
}

/**
 * Settings at the end of postgresql.auto.conf (later lines win), under `header`. A repeated attempt
 * replaces its own earlier block instead of stacking another; the file is swapped in atomically
 * and keeps the data directory owner's ownership. Also createStandby's (its own header).
 */
export async function writeSettingsBlock(
  dataDir: string,
  header: string,
  settings: Record<string, string>,
  owner: { uid: number; gid: number },
): Promise<void> {
  const file = join(dataDir, 'postgresql.auto.conf');
  const current = existsSync(file) ? await readFile(file, 'utf8') : '';
  const at = current.indexOf(header);
  const kept = at === -1 ? current : current.slice(0, at);
  // Quoted as ALTER SYSTEM does: the config parser treats both ' and \ specially.
  const block = Object.entries(settings)
    .map(([k, v]) => `${k} = '${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`)
    .join('\n');
  await writeFileAtomic(file, `${kept.replace(/\n*$/, '\n')}${header}${block}\n`);
  await chown(file, owner.uid, owner.gid);
  await chmod(file, 0o600);
}

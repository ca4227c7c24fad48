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
 * stderr goes into pg_ctl's log file, never the live cluster's log_directory. What the copy brings
 * from the backup's configuration is overridden where it could reach the live cluster: no
 * streaming from a primary (a backup of a standby, or one createStandby built, names the live
 * primary), no commands on the real archive, no pid file or statistics directory shared with it;
 * a small server beside the live one (huge_pages = on would fail while the live one holds them);
 * messages in English, which pgwarden reads in its log.
 */
export function scratchSettings(port: number, socketDirectory: string, major = 0): Record<string, string> {
  const settings: Record<string, string> = {
    port: String(port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: socketDirectory,
    archive_mode: 'off',
    logging_collector: 'off',
    log_destination: 'stderr',
    lc_messages: 'C',
    primary_conninfo: '',
    primary_slot_name: '',
    archive_cleanup_command: '',
    recovery_end_command: '',
    recovery_min_apply_delay: '0',
    external_pid_file: '',
    shared_buffers: '128MB',
    huge_pages: 'try',
  };
  // Before PostgreSQL 15 (which has no such setting), the data directory's own.
  if (major && major < 15) settings.stats_temp_directory = 'pg_stat_tmp';
  return settings;
}

/** The major version of the server a data directory is for (0 when it cannot say). */
export async function majorOf(dataDir: string): Promise<number> {
  return Number((await readFile(join(dataDir, 'PG_VERSION'), 'utf8').catch(() => '0')).trim()) || 0;
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

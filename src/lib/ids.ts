// Backup ids, workflow ids and the names pgwarden gives databases. Pure: used by workflows
// (deterministic) and activities alike.

/** `20261122T020000Z`, optionally followed by `-<suffix>` (lowercase letters, digits). */
const BACKUP_ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z(?:-([a-z0-9]{1,16}))?$/;

/** The backup id for a start time: the UTC second, e.g. `20261122T020000Z`. */
export function formatBackupId(start: Date, suffix?: string): string {
  const iso = start.toISOString(); // 2026-11-22T02:00:00.000Z
  const id = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return suffix ? `${id}-${suffix}` : id;
}

export function isBackupId(value: string): boolean {
  const m = BACKUP_ID.exec(value);
  if (!m) return false;
  const t = backupIdTime(value);
  return t !== undefined && formatBackupId(t) === value.slice(0, 16);
}

/** Why `value` is not a backup id (`what` names it in the message), or undefined when it is one. */
export function backupIdProblem(value: string, what = 'backupId'): string | undefined {
  return isBackupId(value) ? undefined : `${what} "${value}" is not of the form 20261122T020000Z[-suffix]`;
}

/** The UTC time encoded in a backup id, or undefined if it is not one. */
export function backupIdTime(value: string): Date | undefined {
  const m = BACKUP_ID.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m;
  const t = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)));
  return Number.isNaN(t.getTime()) ? undefined : t;
}

/**
 * Names used as a path component in the repository (cluster and database names).
 * PostgreSQL allows almost anything in a database name; the repository refuses what could
 * escape its directory or confuse a shell-using operator.
 */
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,62}$/;
export function isSafeName(value: string): boolean {
  return SAFE_NAME.test(value) && !value.includes('..');
}

/** Stable, readable workflow ids: `pgwarden/main/app/full/20261122T020000Z`. */
export function fullBackupWorkflowId(cluster: string, database: string, backupId: string): string {
  return `pgwarden/${cluster}/${database}/full/${backupId}`;
}

export function verifyBackupWorkflowId(cluster: string, database: string, backupId: string): string {
  return `pgwarden/${cluster}/${database}/verify/${backupId}`;
}

export function restoreDatabaseWorkflowId(cluster: string, database: string, backupId: string): string {
  return `pgwarden/${cluster}/${database}/restore/${backupId}`;
}

export interface RestoreNames {
  /** Where the backup is restored first: `<db>_restore_<id>_<run>`. */
  restoreDatabase: string;
  /** What the live database is renamed to, and kept as: `<db>_pre_restore_<id>_<run>`. */
  preRestoreDatabase: string;
}

/** Characters of the workflow run id (its last ones) that make a restore run's names its own. */
export const RESTORE_RUN_CHARS = 6;

/** PostgreSQL's limit on a name, in bytes (NAMEDATALEN - 1); a longer one is silently cut. */
const MAX_NAME_BYTES = 63;

function utf8Bytes(text: string): number {
  let n = 0;
  for (const c of text) {
    const cp = c.codePointAt(0)!;
    n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return n;
}

/** The longest start of `text` (whole characters) within `bytes` UTF-8 bytes. */
function clipBytes(text: string, bytes: number): string {
  let out = '';
  for (const c of text) {
    if (utf8Bytes(out + c) > bytes) break;
    out += c;
  }
  return out;
}

/** FNV-1a, 32 bits, as 8 hex digits: a short, stable tag of a name. */
function shortHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/**
 * The names of one restore run. With `runId` (every run since pgwarden named them per run) they end
 * in its last characters, so that restoring the same backup again never meets the first run's
 * databases; without it, the names of runs started before that. Both stay within PostgreSQL's 63
 * bytes for any database name: a name too long to fit whole is cut and followed by a hash of all of
 * it (`<start of db>_<8 hex>_pre_restore_<id>_<run>`), so two long names never share a restore's names.
 */
export function restoreNames(database: string, backupId: string, runId?: string): RestoreNames {
  const id = backupId.toLowerCase().replace(/[^a-z0-9]/g, '_');
  // The end of the run id: its random part (a UUIDv7, as Temporal's, begins with the time).
  const run =
    runId === undefined
      ? ''
      : `_${runId
          .toLowerCase()
          .replace(/[^a-z0-9]/g, '')
          .slice(-RESTORE_RUN_CHARS)}`;
  const room = MAX_NAME_BYTES - utf8Bytes(`_pre_restore_${id}${run}`);
  let db = database;
  if (utf8Bytes(database) > room) {
    const start = clipBytes(database, room - 9);
    db = start ? `${start}_${shortHash(database)}` : shortHash(database);
  }
  return { restoreDatabase: `${db}_restore_${id}${run}`, preRestoreDatabase: `${db}_pre_restore_${id}${run}` };
}

/**
 * A database pgwarden made and may drop: a verify database, or a restore's staging
 * `<db>_restore_<id>[_<run>]`; never a live database nor the `<db>_pre_restore_<id>[_<run>]` kept as
 * the way back.
 */
export function isScratchDatabaseName(name: string): boolean {
  return name.startsWith('pgwarden_verify_') || (/_restore_\d{8}t\d{6}z/.test(name) && !name.includes('_pre_restore_'));
}

/**
 * A database a restore made and keeps: the live one renamed aside, `<db>_pre_restore_<id>[_<run>]`,
 * or a restored copy `<db>_restore_<id>[_<run>]` (a tables-mode restore stops there). A `"*"`
 * backup skips them unless asked (`includeRestoreCopies`).
 */
export function isRestoreCopyName(name: string): boolean {
  return /_(pre_)?restore_\d{8}t\d{6}z/.test(name);
}

/**
 * The databases a `"*"` backup takes from a cluster's list: never a verification's scratch
 * database (`pgwarden_verify_*`, always dropped again), and a restore's kept copies only when asked.
 */
export function databasesToBackUp(
  databases: readonly string[],
  includeRestoreCopies = false,
): { take: string[]; skip: string[] } {
  const take: string[] = [];
  const skip: string[] = [];
  for (const name of databases) {
    const own = name.startsWith('pgwarden_verify_') || (!includeRestoreCopies && isRestoreCopyName(name));
    (own ? skip : take).push(name);
  }
  return { take, skip };
}

export function baseBackupWorkflowId(cluster: string, backupId: string): string {
  return `pgwarden/${cluster}/base/${backupId}`;
}

/** `pgwarden/main/pitr/20261122T143500Z`, or `.../pitr-rehearsal/...` for a drill. */
export function pitrWorkflowId(
  cluster: string,
  startedAt: string,
  mode: 'in-place' | 'rehearsal' = 'in-place',
): string {
  return `pgwarden/${cluster}/${mode === 'rehearsal' ? 'pitr-rehearsal' : 'pitr'}/${startedAt}`;
}

/** `pgwarden/main/offsite/20261122T050000Z`; WAL-only runs `offsite-wal`, checks alone `offsite-check`. */
export function offsiteWorkflowId(cluster: string, startedAt: string, what: 'sync' | 'wal' | 'check' = 'sync'): string {
  return `pgwarden/${cluster}/${what === 'sync' ? 'offsite' : `offsite-${what}`}/${startedAt}`;
}

/** `pgwarden/main/retention/20261122T121500Z` (`pgwarden retention`; `.../retention-plan/...` without --apply). */
export function retentionWorkflowId(cluster: string, startedAt: string, apply: boolean): string {
  return `pgwarden/${cluster}/${apply ? 'retention' : 'retention-plan'}/${startedAt}`;
}

/** `pgwarden/main/health/20261122T121500Z` */
export function healthCheckWorkflowId(cluster: string, startedAt: string): string {
  return `pgwarden/${cluster}/health/${startedAt}`;
}

/** `pgwarden/main/standby/replica1/20261122T121500Z` */
export function createStandbyWorkflowId(cluster: string, standby: string, startedAt: string): string {
  return `pgwarden/${cluster}/standby/${standby}/${startedAt}`;
}

/**
 * `pgwarden/main/promote`: one per cluster, whichever standby, so that a second promotion cannot start
 * while one runs (Temporal refuses a running id: WorkflowExecutionAlreadyStarted); once it closed the
 * id is free again (the default reuse policy) and status/approve/reject name its newest run.
 */
export function promoteStandbyWorkflowId(cluster: string): string {
  return `pgwarden/${cluster}/promote`;
}

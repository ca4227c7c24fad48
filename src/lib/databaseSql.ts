// The SQL that gives a database of another name (pgwarden restores into a new database and renames
// it) the backed-up database's properties: quoting, role settings, aclitems, CREATE DATABASE like
// the original, and the owner, settings and grants after pg_restore. Pure.
import { localeProviderProblem, majorVersion, providerOf, type DatabaseProperties } from './privileges.js';

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(value: string): string {
  const body = value.replace(/'/g, "''");
  return value.includes('\\') ? `E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}

/** Settings whose value is a list of (possibly quoted) names, each emitted as its own literal (as pg_dump does). */
const LIST_SETTINGS = new Set([
  'local_preload_libraries',
  'search_path',
  'session_preload_libraries',
  'shared_preload_libraries',
  'temp_tablespaces',
  'unix_socket_directories',
]);

/**
 * Reads a name starting at `from` in `text`: a double-quoted one (`""` inside is a quote), else up to
 * the first character `stop` accepts. Returns the name and where reading ended.
 */
function readName(text: string, from: number, stop: (c: string) => boolean): [string, number] {
  let i = from;
  let out = '';
  if (text[i] !== '"') {
    while (i < text.length && !stop(text[i]!)) out += text[i++];
    return [out, i];
  }
  for (i++; i < text.length; i++) {
    if (text[i] === '"') {
      if (text[i + 1] !== '"') return [out, i + 1];
      i++;
    }
    out += text[i];
  }
  return [out, i];
}

/** PostgreSQL's SplitGUCList: comma-separated, double quotes protect, no downcasing. */
export function splitSettingList(value: string): string[] {
  const out: string[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < value.length && /\s/.test(value[i]!)) i++;
  };
  skipSpace();
  if (i >= value.length) return [];
  for (;;) {
    let item: string;
    [item, i] = readName(value, i, (c) => c === ',' || /\s/.test(c));
    out.push(item);
    skipSpace();
    if (value[i] !== ',') return out;
    i++;
    skipSpace();
  }
}

/** `ALTER DATABASE db SET name TO value` for one pg_db_role_setting entry `name=value`. */
export function alterSettingSql(database: string, role: string | null, entry: string): string {
  const eq = entry.indexOf('=');
  const name = entry.slice(0, eq);
  const value = entry.slice(eq + 1);
  const head =
    role === null
      ? `ALTER DATABASE ${quoteIdent(database)}`
      : `ALTER ROLE ${quoteIdent(role)} IN DATABASE ${quoteIdent(database)}`;
  const values = LIST_SETTINGS.has(name.toLowerCase())
    ? splitSettingList(value).map(quoteLiteral).join(', ') || "''"
    : quoteLiteral(value);
  return `${head} SET ${quoteIdent(name)} TO ${values}`;
}

export interface AclItem {
  /** '' is PUBLIC. */
  grantee: string;
  grantor: string;
  privileges: { letter: string; grantable: boolean }[];
}

/** One aclitem as PostgreSQL prints it: `grantee=privs/grantor`, names double-quoted where needed. */
export function parseAclItem(text: string): AclItem {
  let i = 0;
  const name = (): string => {
    let out: string;
    [out, i] = readName(text, i, (c) => c === '=' || c === '/');
    return out;
  };
  const grantee = name();
  if (text[i++] !== '=') throw new Error(`not an aclitem: ${text}`);
  const privileges: AclItem['privileges'] = [];
  while (i < text.length && text[i] !== '/') {
    const letter = text[i++]!;
    const grantable = text[i] === '*';
    if (grantable) i++;
    privileges.push({ letter, grantable });
  }
  if (text[i++] !== '/') throw new Error(`not an aclitem: ${text}`);
  return { grantee, grantor: name(), privileges };
}

/**
 * CREATE DATABASE for a restore of a database with these properties, on a server of this version:
 * from template0 with its encoding, collation, ctype and locale provider, as the original was made
 * (libc said explicitly from 15 on, so that a backup from 13/14, which recorded no provider, does
 * not take an ICU template0's). Without them (a backup from before they were recorded): a plain
 * CREATE DATABASE, as then. Throws when the server cannot hold the provider (localeProviderProblem).
 */
export function createDatabaseSql(
  database: string,
  p: DatabaseProperties | undefined,
  serverVersionNum: number,
): string {
  const head = `CREATE DATABASE ${quoteIdent(database)}`;
  if (p?.encoding === undefined) return head;
  const problem = localeProviderProblem(p, serverVersionNum);
  if (problem) throw new Error(problem);
  const out = [
    head,
    'TEMPLATE template0',
    `ENCODING ${quoteLiteral(p.encoding)}`,
    `LC_COLLATE ${quoteLiteral(p.collate!)}`,
    `LC_CTYPE ${quoteLiteral(p.ctype!)}`,
  ];
  const provider = providerOf(p);
  if (provider === 'i') out.push('LOCALE_PROVIDER icu', `ICU_LOCALE ${quoteLiteral(p.icuLocale ?? '')}`);
  else if (provider === 'b') out.push('LOCALE_PROVIDER builtin', `BUILTIN_LOCALE ${quoteLiteral(p.icuLocale ?? '')}`);
  else if (majorVersion(serverVersionNum) >= 15) out.push('LOCALE_PROVIDER libc');
  return out.join(' ');
}

const DATABASE_PRIVILEGES: Record<string, string> = { C: 'CREATE', c: 'CONNECT', T: 'TEMPORARY' };

/**
 * The statements that give `database` the recorded owner, connection limit, comment, settings and
 * ACL. Run as a superuser, after pg_restore (settings such as default_transaction_read_only must not
 * apply to the restore itself).
 */
export function databasePropertiesSql(database: string, p: DatabaseProperties): string[] {
  const db = quoteIdent(database);
  const out = [`ALTER DATABASE ${db} OWNER TO ${quoteIdent(p.owner)}`];
  if (p.connectionLimit !== -1) out.push(`ALTER DATABASE ${db} CONNECTION LIMIT ${p.connectionLimit}`);
  if (p.comment !== null) out.push(`COMMENT ON DATABASE ${db} IS ${quoteLiteral(p.comment)}`);
  for (const s of p.settings) for (const entry of s.config) out.push(alterSettingSql(database, s.role, entry));
  if (p.acl !== null) {
    // From nothing, then each grant as its grantor made it: the owner's first (a superuser's GRANT
    // counts as the owner's), then, pass by pass, those whose grantor holds the grant option by then
    // (chains: the owner to A with grant option, A to B with grant option, B to C). PostgreSQL only
    // warns and grants nothing when the grantor lacks it.
    out.push(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`, `REVOKE ALL ON DATABASE ${db} FROM ${quoteIdent(p.owner)}`);
    const ordered: AclItem[] = [];
    const held = new Map<string, Set<string>>();
    let pending = p.acl.map(parseAclItem);
    while (pending.length) {
      const ready = pending.filter(
        (a) => a.grantor === p.owner || a.privileges.every((x) => held.get(a.grantor)?.has(x.letter)),
      );
      // A grant no pass makes possible (not from a consistent ACL) is still tried, last, as before.
      const next = ready.length ? ready : pending;
      for (const a of next) {
        ordered.push(a);
        for (const x of a.privileges.filter((y) => y.grantable))
          held.set(a.grantee, (held.get(a.grantee) ?? new Set()).add(x.letter));
      }
      pending = pending.filter((a) => !next.includes(a));
    }
    for (const item of ordered) {
      const to = item.grantee === '' ? 'PUBLIC' : quoteIdent(item.grantee);
      const grants: string[] = [];
      for (const grantable of [false, true]) {
        const privs = item.privileges
          .filter((x) => x.grantable === grantable)
          .map((x) => DATABASE_PRIVILEGES[x.letter] ?? x.letter);
        if (privs.length)
          grants.push(`GRANT ${privs.join(', ')} ON DATABASE ${db} TO ${to}${grantable ? ' WITH GRANT OPTION' : ''}`);
      }
      if (item.grantor === p.owner) out.push(...grants);
      else out.push(`SET ROLE ${quoteIdent(item.grantor)}`, ...grants, 'RESET ROLE');
    }
  }
  return out;
}

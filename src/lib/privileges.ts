// What a logical restore brings back besides rows: owners, privileges, default privileges and the
// database's own properties. Pure: the manifest's record of them (read in the dump's snapshot), the
// SQL that gives a database of another name the backed-up database's properties, and the comparison
// that names every difference.
import { z } from 'zod';

/** One object's owner and privileges; `acl` is the effective ACL (the default spelled out), sorted. */
const objectSchema = z.object({
  /** table, view, sequence, column, schema, function, procedure, type, large objects, default privileges, ... */
  kind: z.string(),
  /** Schema-qualified, quoted where needed; columns `schema.table.column`. */
  name: z.string(),
  owner: z.string(),
  acl: z.array(z.string()),
  /** What else belongs to the object's security: `security definer`, a count of large objects. */
  detail: z.string().optional(),
});
export type PrivilegeObject = z.infer<typeof objectSchema>;

/**
 * The database-level properties pg_restore emits only with --create (pgwarden restores into a new
 * database and renames it, so it applies them itself).
 */
const databaseSchema = z.object({
  owner: z.string(),
  /** datacl as aclitem texts (sorted); null: the default (owner all, PUBLIC CONNECT and TEMPORARY). */
  acl: z.array(z.string()).nullable(),
  connectionLimit: z.number().int(),
  comment: z.string().nullable(),
  /** pg_db_role_setting rows of this database: `role` null for ALTER DATABASE ... SET. */
  settings: z.array(z.object({ role: z.string().nullable(), config: z.array(z.string()) })),
  /** Fixed at CREATE DATABASE: encoding name, LC_COLLATE, LC_CTYPE. Absent in backups made before pgwarden recorded them. */
  encoding: z.string().optional(),
  collate: z.string().optional(),
  ctype: z.string().optional(),
  /** datlocprovider: `c` libc, `i` icu, `b` builtin; null before PostgreSQL 15. */
  localeProvider: z.string().nullable().optional(),
  /** The ICU (or builtin) locale, when the provider is one. */
  icuLocale: z.string().nullable().optional(),
});
export type DatabaseProperties = z.infer<typeof databaseSchema>;

export const privilegesSchema = z.object({
  database: databaseSchema,
  objects: z.array(objectSchema),
  /** Every role the dump names (owners, grantees, grantors, role settings, policies): they must exist to restore it. */
  roles: z.array(z.string()),
});
export type Privileges = z.infer<typeof privilegesSchema>;

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

/** The major version of a server_version_num: 150004 → 15. */
export function majorVersion(serverVersionNum: number): number {
  return Math.floor(serverVersionNum / 10000);
}

const PROVIDERS: Record<string, { name: string; since: number }> = {
  c: { name: 'libc', since: 0 },
  i: { name: 'icu', since: 15 },
  b: { name: 'builtin', since: 17 },
};

/** datlocprovider; null (recorded from PostgreSQL 13/14, which had none) is libc, all they had. */
function providerOf(p: DatabaseProperties): string {
  return p.localeProvider ?? 'c';
}

/** Why a server of this version cannot hold the database's locale provider (icu needs 15+, builtin 17+), or undefined. */
export function localeProviderProblem(p: DatabaseProperties | undefined, serverVersionNum: number): string | undefined {
  if (p?.encoding === undefined) return undefined;
  const provider = PROVIDERS[providerOf(p)];
  if (!provider) return `the backup's locale provider '${providerOf(p)}' is unknown to pgwarden`;
  const major = majorVersion(serverVersionNum);
  if (major < provider.since)
    return `the backup's database uses the ${provider.name} locale provider, which needs PostgreSQL ${provider.since} or later; the server is PostgreSQL ${major}`;
  return undefined;
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

/**
 * `grep -E '...'` keeping exactly the CREATE ROLE and ALTER ROLE lines of these roles from
 * pg_dumpall's globals, whatever their names hold: pg_dumpall double-quotes a name that needs it
 * (an embedded `"` doubled), plain lowercase names only where they are keywords.
 */
export function grepRolesCommand(roles: string[]): string {
  const ere = (s: string) => s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
  const names = roles.map((r) => (/^[a-z_][a-z0-9_$]*$/.test(r) ? `"?${ere(r)}"?` : `"${ere(r.replace(/"/g, '""'))}"`));
  // One shell word in single quotes; a quote in a name ends it, is escaped, and starts it again.
  return `grep -E '${`^(CREATE|ALTER) ROLE (${names.join('|')})[ ;]`.replace(/'/g, "'\\''")}'`;
}

const MAX_LISTED = 25;

/**
 * Every difference between the backup's record and a restored database, one line each (at most 25,
 * then a count). `versions`: server_version_num of the backed-up server and of the one restored on:
 * a provider recorded as null (13/14) is libc; ICU locale names are compared only between servers of
 * the same major (16 rewrites them to language tags, `de_DE` → `de-DE`).
 */
export function comparePrivileges(
  expected: Privileges,
  actual: Privileges,
  versions: { backup: number; restored: number },
): string[] {
  const problems: string[] = [];
  const e = expected.database;
  const a = actual.database;
  const show = (v: unknown) => (v === null ? 'none' : Array.isArray(v) ? `{${v.join(',')}}` : String(v));
  const same = (x: unknown, y: unknown) => JSON.stringify(x) === JSON.stringify(y);
  if (e.owner !== a.owner) problems.push(`database owner is ${a.owner}, the backup has ${e.owner}`);
  if (!same(e.acl === null ? null : [...e.acl].sort(), a.acl === null ? null : [...a.acl].sort())) {
    problems.push(`database privileges are ${show(a.acl)}, the backup has ${show(e.acl)}`);
  }
  if (e.connectionLimit !== a.connectionLimit)
    problems.push(`database connection limit is ${a.connectionLimit}, the backup has ${e.connectionLimit}`);
  if (e.comment !== a.comment)
    problems.push(`database comment is ${show(a.comment)}, the backup has ${show(e.comment)}`);
  if (e.encoding !== undefined) {
    for (const [what, k] of [
      ['encoding', 'encoding'],
      ['collation', 'collate'],
      ['ctype', 'ctype'],
    ] as const) {
      if ((e[k] ?? null) !== (a[k] ?? null))
        problems.push(`database ${what} is ${show(a[k] ?? null)}, the backup has ${show(e[k] ?? null)}`);
    }
    if (providerOf(e) !== providerOf(a))
      problems.push(`database locale provider is ${providerOf(a)}, the backup has ${providerOf(e)}`);
    else if (
      majorVersion(versions.backup) === majorVersion(versions.restored) &&
      (e.icuLocale ?? null) !== (a.icuLocale ?? null)
    ) {
      problems.push(`database ICU locale is ${show(a.icuLocale ?? null)}, the backup has ${show(e.icuLocale ?? null)}`);
    }
  }
  const settings = (p: DatabaseProperties) => new Map(p.settings.map((s) => [s.role ?? '', [...s.config].sort()]));
  const es = settings(e);
  const as = settings(a);
  for (const role of new Set([...es.keys(), ...as.keys()])) {
    const what = role === '' ? 'database settings' : `settings of role ${role} in the database`;
    if (!same(es.get(role) ?? [], as.get(role) ?? []))
      problems.push(`${what} are ${show(as.get(role) ?? [])}, the backup has ${show(es.get(role) ?? [])}`);
  }
  const key = (o: PrivilegeObject) => `${o.kind} ${o.name}`;
  const restored = new Map(actual.objects.map((o) => [key(o), o]));
  for (const o of expected.objects) {
    const r = restored.get(key(o));
    restored.delete(key(o));
    if (!r) problems.push(`${key(o)} is missing`);
    else {
      if (r.owner !== o.owner) problems.push(`${key(o)} is owned by ${r.owner}, the backup has ${o.owner}`);
      if (!same(r.acl, o.acl)) problems.push(`${key(o)} has privileges ${show(r.acl)}, the backup has ${show(o.acl)}`);
      if ((r.detail ?? '') !== (o.detail ?? ''))
        problems.push(`${key(o)} is ${r.detail ?? 'plain'}, the backup has ${o.detail ?? 'plain'}`);
    }
  }
  for (const k of restored.keys()) problems.push(`${k} is not in the backup`);
  return problems.length > MAX_LISTED
    ? [...problems.slice(0, MAX_LISTED), `and ${problems.length - MAX_LISTED} more differences`]
    : problems;
}

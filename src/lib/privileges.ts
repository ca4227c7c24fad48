// What a logical restore brings back besides rows: owners, privileges, default privileges and the
// database's own properties. Pure: the manifest's record of them (read in the dump's snapshot), the
// locale providers a server can hold, and the comparison that names every difference. The SQL that
// gives a database of another name the backed-up database's properties is databaseSql.ts.
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
export function providerOf(p: DatabaseProperties): string {
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

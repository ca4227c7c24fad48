// Owners and privileges read from the catalogs (at backup time in the dump's own snapshot, at verify
// time in the restored database), database properties applied to a restored database, and the roles
// a dump needs checked on the target cluster.
import type pg from 'pg';
import { ErrorType, nonRetryable } from '../lib/errors.js';
import { databasePropertiesSql } from '../lib/databaseSql.js';
import type { DatabaseProperties, PrivilegeObject, Privileges } from '../lib/privileges.js';

const USER_SCHEMA = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'`;
const notExtension = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '${catalog}'::regclass AND d.objid = ${oid} AND d.deptype = 'e')`;

// Every owned object pg_dump restores the owner and ACL of, with its effective ACL (NULL is the
// default for its kind, spelled out with acldefault so that "default" and "granted the default
// explicitly" compare equal, as pg_dump treats them). Large objects are grouped by owner and ACL:
// millions of them would not fit a manifest.
const OBJECTS = `
o(kind, name, owner, acl, detail) AS (
  SELECT 'schema', quote_ident(n.nspname), n.nspowner, coalesce(n.nspacl, acldefault('n', n.nspowner)), NULL
    FROM pg_namespace n WHERE ${USER_SCHEMA} AND ${notExtension('pg_namespace', 'n.oid')}
  UNION ALL
  SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                        WHEN 'f' THEN 'foreign table' ELSE 'table' END,
         format('%I.%I', n.nspname, c.relname), c.relowner,
         coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)), NULL
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND ${USER_SCHEMA} AND ${notExtension('pg_class', 'c.oid')}
  UNION ALL
  SELECT 'column', format('%I.%I.%I', n.nspname, c.relname, a.attname), c.relowner, a.attacl, NULL
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped AND ${USER_SCHEMA} AND ${notExtension('pg_class', 'c.oid')}
  UNION ALL
  SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
         format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), p.proowner,
         coalesce(p.proacl, acldefault('f', p.proowner)), CASE WHEN p.prosecdef THEN 'security definer' END
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE ${USER_SCHEMA} AND ${notExtension('pg_proc', 'p.oid')}
  UNION ALL
  SELECT CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END, format_type(t.oid, NULL), t.typowner,
         coalesce(t.typacl, acldefault('T', t.typowner)), NULL
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
   WHERE t.typtype IN ('b', 'c', 'd', 'e', 'r')
     AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
     AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)
     AND ${USER_SCHEMA} AND ${notExtension('pg_type', 't.oid')}
  UNION ALL
  SELECT 'large objects', format('owned by %I with privileges %s', pg_get_userbyid(lomowner), acl), lomowner, acl, count(*) || ' large objects'
    FROM (SELECT lomowner, coalesce(lomacl, acldefault('L', lomowner)) AS acl FROM pg_largeobject_metadata) l
   GROUP BY lomowner, acl
  UNION ALL
  SELECT 'default privileges',
         format('for role %I%s on %s', pg_get_userbyid(d.defaclrole),
                coalesce(' in schema ' || quote_ident(dn.nspname), ''),
                CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions'
                                     WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas' ELSE d.defaclobjtype::text END),
         d.defaclrole, d.defaclacl, NULL
    FROM pg_default_acl d LEFT JOIN pg_namespace dn ON dn.oid = d.defaclnamespace
)`;

const OBJECTS_SQL = `WITH ${OBJECTS}
SELECT kind, name, pg_get_userbyid(owner) AS owner,
       ARRAY(SELECT x::text FROM unnest(acl) x ORDER BY 1) AS acl, detail
  FROM o ORDER BY kind, name, detail`;

// Roles pg_restore will name: owners, grantees and grantors, default privileges' roles, role
// settings in this database, policies' roles. (PUBLIC is no role.) pg_shdepend holds every object
// kind's owner, ACL members (grantors too) and policy roles, also kinds the record above does not list
// (foreign data wrappers and servers, user mappings, publications, event triggers, collations,
// conversions, operators and their classes and families, text search configurations and
// dictionaries, statistics objects, languages...), and the database's own; it does not hold the
// bootstrap superuser (pinned), who appears as the owner above. Owners of an extension and its members
// are left out: pg_dump restores neither (whoever runs CREATE EXTENSION owns them); so are objects in
// other sessions' temporary schemas, which pg_dump skips. Subscriptions are shared objects (their
// pg_shdepend rows have dbid 0): their owners are read from pg_subscription.
const ROLES_SQL = `
WITH ${OBJECTS}, db AS (SELECT oid FROM pg_database WHERE datname = current_database()), acls(acl) AS (
  SELECT acl FROM o UNION ALL SELECT datacl FROM pg_database WHERE datname = current_database() AND datacl IS NOT NULL
), r(oid) AS (
  SELECT owner FROM o
  UNION SELECT (aclexplode(acl)).grantee FROM acls
  UNION SELECT (aclexplode(acl)).grantor FROM acls
  UNION SELECT unnest(p.polroles) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE NOT pg_is_other_temp_schema(c.relnamespace)
  UNION SELECT datdba FROM pg_database WHERE datname = current_database()
  UNION SELECT subowner FROM pg_subscription WHERE subdbid = (SELECT oid FROM db)
  UNION SELECT s.setrole FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = current_database()
  UNION SELECT sd.refobjid FROM pg_shdepend sd
         WHERE sd.refclassid = 'pg_authid'::regclass AND sd.deptype IN ('o', 'a', 'r')
           AND (sd.dbid = (SELECT oid FROM db) OR (sd.dbid = 0 AND sd.classid = 'pg_database'::regclass AND sd.objid = (SELECT oid FROM db)))
           AND NOT (sd.deptype = 'o' AND (sd.classid = 'pg_extension'::regclass
                    OR EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = sd.classid AND e.objid = sd.objid AND e.deptype = 'e')))
           AND NOT EXISTS (SELECT 1 FROM pg_depend ns WHERE ns.classid = sd.classid AND ns.objid = sd.objid
                              AND ns.refclassid = 'pg_namespace'::regclass AND pg_is_other_temp_schema(ns.refobjid))
)
SELECT rolname FROM pg_roles WHERE oid IN (SELECT oid FROM r) ORDER BY 1`;

const DATABASE_SQL = `
SELECT pg_get_userbyid(d.datdba) AS owner, ARRAY(SELECT x::text FROM unnest(d.datacl) x ORDER BY 1) AS acl, d.datacl IS NULL AS default_acl,
       d.datconnlimit AS connection_limit, shobj_description(d.oid, 'pg_database') AS comment,
       pg_encoding_to_char(d.encoding) AS encoding, d.datcollate AS collate, d.datctype AS ctype,
       to_jsonb(d) ->> 'datlocprovider' AS locale_provider, coalesce(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale') AS icu_locale,
       coalesce((SELECT json_agg(json_build_object('role', CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole) END, 'config', s.setconfig)
                                 ORDER BY s.setrole)
                   FROM pg_db_role_setting s WHERE s.setdatabase = d.oid), '[]') AS settings
  FROM pg_database d WHERE d.datname = current_database()`;

/**
 * Owners, privileges and database properties of the connected database. Runs inside the caller's
 * transaction (at backup time: the one that exported the dump's snapshot), with search_path set
 * for that transaction only, so that names print the same in every session.
 */
export async function readPrivileges(client: pg.Client): Promise<Privileges> {
  await client.query(`SELECT set_config('search_path', 'pg_catalog', true)`);
  const objects = (await client.query<PrivilegeObject & { detail: string | null }>(OBJECTS_SQL)).rows.map(
    ({ detail, ...o }) => (detail === null ? o : { ...o, detail }),
  );
  const roles = (await client.query<{ rolname: string }>(ROLES_SQL)).rows.map((r) => r.rolname);
  const { rows } = await client.query<{
    owner: string;
    acl: string[];
    default_acl: boolean;
    connection_limit: number;
    comment: string | null;
    settings: DatabaseProperties['settings'];
    encoding: string;
    collate: string;
    ctype: string;
    locale_provider: string | null;
    icu_locale: string | null;
  }>(DATABASE_SQL);
  const d = rows[0]!;
  return {
    database: {
      owner: d.owner,
      acl: d.default_acl ? null : d.acl,
      connectionLimit: d.connection_limit,
      comment: d.comment,
      settings: d.settings,
      encoding: d.encoding,
      collate: d.collate,
      ctype: d.ctype,
      localeProvider: d.locale_provider,
      icuLocale: d.icu_locale,
    },
    objects,
    roles,
  };
}

/** Gives a restored database the backed-up one's owner, ACL, comment, settings and connection limit. */
export async function applyDatabaseProperties(
  client: pg.Client,
  database: string,
  properties: DatabaseProperties,
): Promise<void> {
  for (const sql of databasePropertiesSql(database, properties)) await client.query(sql);
}

/**
 * A restored database carries its settings (applied above), e.g. a statement_timeout meant for the
 * application: pgwarden's own work in it (counting rows, ANALYZE, REINDEX) must not be cut short by them.
 */
export async function withoutDatabaseLimits(client: pg.Client): Promise<void> {
  await client.query('SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0');
}

/**
 * Roles are cluster-wide: a database restore needs every role its dump names to exist on the target,
 * and pgwarden's user to be able to act as each (a superuser can). Fails naming them, with the way to
 * create them, before anything is touched.
 */
export async function checkRoles(
  client: pg.Client,
  roles: string[],
  where: string,
  globalsHint: (missing: string[]) => string,
): Promise<void> {
  const { rows } = await client.query<{ role: string; present: boolean; usable: boolean }>(
    `SELECT r AS role, a.oid IS NOT NULL AS present, coalesce(pg_has_role(current_user, a.oid, 'MEMBER'), false) AS usable
       FROM unnest($1::text[]) r LEFT JOIN pg_roles a ON a.rolname = r ORDER BY 1`,
    [roles],
  );
  const missing = rows.filter((r) => !r.present).map((r) => r.role);
  if (missing.length) {
    throw nonRetryable(
      ErrorType.MissingRoles,
      `${where} lacks the roles ${missing.join(', ')} that the backup's objects belong or are granted to; a database restore does not create roles. Create them from the backup's globals.sql: ${globalsHint(missing)}`,
    );
  }
  const unusable = rows.filter((r) => !r.usable).map((r) => r.role);
  if (unusable.length) {
    throw nonRetryable(
      ErrorType.MissingRoles,
      `pgwarden's user on ${where} cannot act as ${unusable.join(', ')}: restoring owners and privileges needs a superuser (or membership in every owner role)`,
    );
  }
}

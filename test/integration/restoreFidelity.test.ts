// A logical restore brings back what was there, not only rows: owners and privileges of every kind
// of object, default privileges, and the database's own owner, ACL, comment, settings and connection
// limit. Checked the way an operator burned by `pg_restore --no-owner` would: the catalogs compared
// before and after, then the application's roles log in and work. verifyBackup proves the same, and
// a restore needing a role the cluster lacks stops in plan, before approval, naming it.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPrivileges } from '../../src/postgres/privileges.js';
import type { Config } from '../../src/config/index.js';
import type { Progress } from '../../src/workflows/messages.js';
import type { RestoreDatabaseResult } from '../../src/workflows/restoreDatabase.js';
import type { VerifyBackupResult } from '../../src/workflows/verifyBackup.js';
import { PASSWORD_ENV, testConfig, testSecrets } from '../helpers/config.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { startCluster, type TestCluster } from '../helpers/postgres.js';
import { PG_BIN } from '../helpers/require.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

let cluster: TestCluster;
let key: TestKey;
let env: TestWorkflowEnvironment;
let dir: string;
let config: Config;
let worker: RunningWorker;
let largeObject: number;
const queue = uniqueQueue('fidelity');
const BACKUP = '20261122T020000Z';
const manifestFile = () => join(dir, 'repo/main/logical/app', BACKUP, 'manifest.json');

beforeAll(async () => {
  [cluster, key, env] = await Promise.all([startCluster(), createTestKey(), testEnvironment()]);
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-fidelity-'));
  config = testConfig({ cluster, repository: join(dir, 'repo'), taskQueue: queue, key });
  worker = await startPgwardenWorker(env, config, testSecrets(cluster, key));
  await cluster.query(`
    CREATE ROLE app_owner NOLOGIN;
    CREATE ROLE app_rw LOGIN PASSWORD 'rw-secret';
    CREATE ROLE app_ro LOGIN PASSWORD 'ro-secret';
    CREATE ROLE "Audit Team" NOLOGIN;
    CREATE ROLE reporting NOLOGIN;
    CREATE ROLE collation_owner NOLOGIN;
    CREATE ROLE "dict's ""owner""" NOLOGIN;`);
  await cluster.query('CREATE DATABASE app OWNER app_owner');
  await cluster.query(`
    ALTER DATABASE app SET search_path = shop, public;
    ALTER DATABASE app SET work_mem = '8MB';
    ALTER ROLE app_ro IN DATABASE app SET statement_timeout = '5s';
    COMMENT ON DATABASE app IS 'orders; the owner''s copy';
    ALTER DATABASE app CONNECTION LIMIT 50;
    REVOKE ALL ON DATABASE app FROM PUBLIC;
    GRANT CONNECT ON DATABASE app TO app_rw, app_ro;
    GRANT CONNECT, TEMPORARY ON DATABASE app TO "Audit Team" WITH GRANT OPTION;
    SET ROLE "Audit Team"; GRANT CONNECT ON DATABASE app TO reporting WITH GRANT OPTION;
    SET ROLE reporting; GRANT CONNECT ON DATABASE app TO app_rw; RESET ROLE;`);
  await cluster.query(
    `
    CREATE SCHEMA shop AUTHORIZATION app_owner;
    GRANT USAGE ON SCHEMA shop TO app_rw, app_ro, "Audit Team";
    SET ROLE app_owner;
    ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT SELECT ON TABLES TO app_ro;
    ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT SELECT, INSERT, UPDATE ON TABLES TO app_rw;
    ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT USAGE ON SEQUENCES TO app_rw;
    ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
    CREATE TYPE shop.status AS ENUM ('new', 'paid');
    REVOKE USAGE ON TYPE shop.status FROM PUBLIC;
    GRANT USAGE ON TYPE shop.status TO app_rw, app_ro;
    CREATE TABLE shop.orders (id bigserial PRIMARY KEY, customer text NOT NULL, card text, status shop.status NOT NULL DEFAULT 'new');
    INSERT INTO shop.orders (customer, card) SELECT 'c' || g, '4111-' || g FROM generate_series(1, 100) g;
    REVOKE SELECT ON shop.orders FROM app_ro;
    GRANT SELECT (id, customer, status) ON shop.orders TO app_ro;
    CREATE SEQUENCE shop.invoice_no;
    CREATE VIEW shop.order_summary AS SELECT status, count(*) AS n FROM shop.orders GROUP BY status;
    GRANT SELECT ON shop.order_summary TO "Audit Team";
    CREATE FUNCTION shop.order_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = shop, pg_temp
      AS 'SELECT count(*) FROM shop.orders';
    GRANT EXECUTE ON FUNCTION shop.order_count() TO app_ro;
    CREATE PROCEDURE shop.mark_paid(order_id bigint) LANGUAGE sql AS 'UPDATE shop.orders SET status = ''paid'' WHERE id = order_id';
    GRANT EXECUTE ON PROCEDURE shop.mark_paid(bigint) TO app_rw;
    CREATE DOMAIN shop.card_no AS text CHECK (VALUE ~ '^[0-9-]+$');
    REVOKE USAGE ON DOMAIN shop.card_no FROM PUBLIC;
    GRANT USAGE ON DOMAIN shop.card_no TO app_rw;
    CREATE AGGREGATE shop.joined(text) (SFUNC = textcat, STYPE = text, INITCOND = '');
    GRANT EXECUTE ON FUNCTION shop.joined(text) TO "Audit Team";
    CREATE TABLE public.customers (id int PRIMARY KEY, name text, secret text);
    INSERT INTO public.customers SELECT g, 'n' || g, 's' || g FROM generate_series(1, 10) g;
    GRANT SELECT (id, name) ON public.customers TO app_ro;
    GRANT SELECT ON public.customers TO reporting;
    DO $$ DECLARE o oid := lo_from_bytea(0, 'invoice 1'); BEGIN EXECUTE format('GRANT SELECT ON LARGE OBJECT %s TO app_ro', o); END $$;
    RESET ROLE;`,
    'app',
  );
  // Kinds of object the privileges record does not list, whose owners pg_restore still sets.
  await cluster.query(
    `CREATE COLLATION shop.names FROM "C"; ALTER COLLATION shop.names OWNER TO collation_owner;
     CREATE TEXT SEARCH DICTIONARY shop.simple_dict (TEMPLATE = pg_catalog.simple); ALTER TEXT SEARCH DICTIONARY shop.simple_dict OWNER TO "dict's ""owner""";`,
    'app',
  );
  largeObject = Number(
    (await cluster.query<{ oid: string }>('SELECT oid FROM pg_largeobject_metadata', 'app'))[0]!.oid,
  );
  await env.client.workflow.execute('fullBackup', {
    taskQueue: queue,
    workflowId: `${queue}/backup`,
    args: [{ cluster: 'main', database: 'app', backupId: BACKUP }],
  });
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await Promise.all([cluster?.stop(), key?.remove(), dir && rm(dir, { recursive: true, force: true })]);
});

/** The catalogs an application's access depends on, by name, ACLs sorted (their order carries no meaning). */
async function catalogs(database: string) {
  const acl = (column: string) => `(SELECT array_agg(x::text ORDER BY x::text) FROM unnest(${column}) x)`;
  const q = (sql: string, db = database) => cluster.query(sql, db);
  return {
    relations: await q(`SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner) AS owner, ${acl('c.relacl')} AS acl
                          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname IN ('shop', 'public') ORDER BY 1`),
    columns: await q(
      `SELECT attrelid::regclass::text AS rel, attname, ${acl('attacl')} AS acl FROM pg_attribute WHERE attacl IS NOT NULL ORDER BY 1, 2`,
    ),
    schemas: await q(
      `SELECT nspname, pg_get_userbyid(nspowner) AS owner, ${acl('nspacl')} AS acl FROM pg_namespace WHERE nspname IN ('shop', 'public') ORDER BY 1`,
    ),
    functions:
      await q(`SELECT proname, prokind, pg_get_userbyid(proowner) AS owner, ${acl('proacl')} AS acl, prosecdef, proconfig
                          FROM pg_proc WHERE pronamespace = 'shop'::regnamespace ORDER BY 1`),
    types: await q(`SELECT typname, typtype, pg_get_userbyid(typowner) AS owner, ${acl('typacl')} AS acl FROM pg_type
                     WHERE typnamespace = 'shop'::regnamespace AND typtype IN ('e', 'd') ORDER BY 1`),
    largeObjects: await q(
      `SELECT oid::bigint AS oid, pg_get_userbyid(lomowner) AS owner, ${acl('lomacl')} AS acl FROM pg_largeobject_metadata ORDER BY 1`,
    ),
    defaultPrivileges:
      await q(`SELECT pg_get_userbyid(defaclrole) AS role, defaclnamespace::regnamespace::text AS schema, defaclobjtype, ${acl('defaclacl')} AS acl
                                  FROM pg_default_acl ORDER BY 1, 2, 3`),
    database: await q(
      `SELECT pg_get_userbyid(datdba) AS owner, ${acl('datacl')} AS acl, datconnlimit, shobj_description(oid, 'pg_database') AS comment
                         FROM pg_database WHERE datname = '${database}'`,
      'postgres',
    ),
    settings: await q(
      `SELECT coalesce(pg_get_userbyid(NULLIF(s.setrole, 0)), '') AS role, s.setconfig
                         FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = '${database}' ORDER BY 1`,
      'postgres',
    ),
  };
}

async function asRole<T>(user: string, password: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ host: cluster.host, port: cluster.port, user, password, database: 'app' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function restore(name: string, extra: object = {}): Promise<RestoreDatabaseResult> {
  const handle = await env.client.workflow.start('restoreDatabase', {
    taskQueue: queue,
    workflowId: `${queue}/${name}`,
    args: [{ cluster: 'main', database: 'app', backupId: BACKUP, ...extra }],
  });
  if (!('tables' in extra)) {
    const deadline = Date.now() + 60_000;
    while ((await handle.query<Progress>('progress')).step !== 'approve') {
      if (Date.now() > deadline) throw new Error('never reached approve');
      await new Promise((r) => setTimeout(r, 200));
    }
    await handle.signal('approve', { approver: 'alice', reason: 'fidelity test' });
  }
  return (await handle.result()) as RestoreDatabaseResult;
}

async function failureOf(run: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = ((err as WorkflowFailedError).cause as ActivityFailure).cause as ApplicationFailure;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause;
}

describe('a logical restore keeps owners, privileges and database settings', () => {
  it('restoreDatabase (full, approved): the catalogs equal the original, and the application logs in and works', async () => {
    const before = await catalogs('app');
    expect(before.database).toEqual([
      { owner: 'app_owner', acl: expect.any(Array), datconnlimit: 50, comment: "orders; the owner's copy" },
    ]);
    // The procedure, the aggregate and the domain are compared, with their grants.
    expect(before.functions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          proname: 'mark_paid',
          prokind: 'p',
          owner: 'app_owner',
          acl: expect.arrayContaining(['app_rw=X/app_owner']),
        }),
        expect.objectContaining({
          proname: 'joined',
          prokind: 'a',
          owner: 'app_owner',
          acl: expect.arrayContaining(['"Audit Team"=X/app_owner']),
        }),
      ]),
    );
    expect(before.types).toContainEqual({
      typname: 'card_no',
      typtype: 'd',
      owner: 'app_owner',
      acl: expect.arrayContaining(['app_rw=U/app_owner']),
    });
    expect(before.types.find((t) => t.typname === 'card_no')!.acl).toHaveLength(2); // PUBLIC's USAGE revoked
    // What an accident or a bad migration does to the live database.
    await cluster.query(
      'REVOKE ALL ON shop.orders FROM app_rw; ALTER TABLE shop.orders OWNER TO postgres; DELETE FROM shop.orders WHERE id > 50',
      'app',
    );
    await cluster.query(
      'REVOKE ALL ON PROCEDURE shop.mark_paid(bigint) FROM app_rw; GRANT USAGE ON DOMAIN shop.card_no TO PUBLIC; ALTER AGGREGATE shop.joined(text) OWNER TO postgres',
      'app',
    );
    await cluster.query(`ALTER DATABASE app RESET ALL; ALTER DATABASE app OWNER TO postgres`);

    const result = await restore('full');
    expect(result).toMatchObject({
      outcome: 'restored',
      privileges: expect.stringMatching(/^\d+ objects and the database's properties compared$/),
    });
    expect(await catalogs('app')).toEqual(before);
    // The application's own roles, as the application uses them. search_path comes from ALTER DATABASE SET.
    await asRole('app_rw', 'rw-secret', async (c) => {
      expect((await c.query('SELECT count(*)::int AS n FROM orders')).rows).toEqual([{ n: 100 }]);
      await c.query(`INSERT INTO orders (customer) VALUES ('after restore')`);
      await c.query(`SELECT nextval('invoice_no')`);
      await c.query('CALL mark_paid(1)');
      expect((await c.query('SHOW work_mem')).rows).toEqual([{ work_mem: '8MB' }]);
    });
    await asRole('app_ro', 'ro-secret', async (c) => {
      expect((await c.query('SELECT count(customer)::int AS n FROM orders')).rows).toEqual([{ n: 101 }]);
      await expect(c.query('SELECT card FROM orders')).rejects.toThrow(/permission denied/);
      await expect(c.query(`INSERT INTO orders (customer) VALUES ('x')`)).rejects.toThrow(/permission denied/);
      // SECURITY DEFINER: app_ro cannot read card, but the owner's function counts every row.
      expect((await c.query('SELECT order_count()::int AS n')).rows).toEqual([{ n: 101 }]);
      expect((await c.query('SHOW statement_timeout')).rows).toEqual([{ statement_timeout: '5s' }]);
      expect((await c.query(`SELECT convert_from(lo_get(${largeObject}), 'UTF8') AS body`)).rows).toEqual([
        { body: 'invoice 1' },
      ]);
      await expect(c.query('CALL mark_paid(2)')).rejects.toThrow(/permission denied for procedure mark_paid/);
      await expect(c.query('SELECT joined(customer) FROM orders')).rejects.toThrow(
        /permission denied for (function|aggregate) joined/,
      );
    });
    // The connection limit and ACL of the database itself: PUBLIC may not connect.
    const nobody = "CREATE ROLE nobody LOGIN PASSWORD 'nobody'";
    await cluster.query(nobody);
    await expect(asRole('nobody', 'nobody', async () => undefined)).rejects.toThrow(
      /permission denied for database "app"/,
    );
    await cluster.query('DROP ROLE nobody');
  });

  it('verifyBackup compares owners and privileges with the manifest, naming what differs', async () => {
    const ok = (await env.client.workflow.execute('verifyBackup', {
      taskQueue: queue,
      workflowId: `${queue}/verify-ok`,
      args: [{ cluster: 'main', database: 'app', backupId: BACKUP }],
    })) as VerifyBackupResult;
    expect(ok.ok).toBe(true);
    const original = await readFile(manifestFile(), 'utf8');
    const manifest = JSON.parse(original) as {
      privileges: { objects: { kind: string; name: string; acl: string[] }[]; database: { settings: unknown[] } };
      verifications: { detail: string }[];
    };
    expect(manifest.verifications.at(-1)!.detail).toMatch(
      /owners and privileges: \d+ objects and the database's properties compared/,
    );
    expect(manifest.privileges.objects).toContainEqual(
      expect.objectContaining({
        kind: 'function',
        name: 'shop.order_count()',
        owner: 'app_owner',
        detail: 'security definer',
      }),
    );
    expect(manifest.privileges.objects).toContainEqual(
      expect.objectContaining({
        kind: 'procedure',
        name: expect.stringMatching(/^shop\.mark_paid\(.*bigint\)$/),
        owner: 'app_owner',
      }),
    );
    expect(manifest.privileges.objects).toContainEqual(
      expect.objectContaining({ kind: 'aggregate', name: 'shop.joined(text)', owner: 'app_owner' }),
    );
    expect(manifest.privileges.objects).toContainEqual(
      expect.objectContaining({ kind: 'domain', name: 'shop.card_no', owner: 'app_owner' }),
    );

    // The record says app_rw may also DELETE from shop.orders; the restored database (rightly) says no.
    const orders = manifest.privileges.objects.find((o) => o.kind === 'table' && o.name === 'shop.orders')!;
    orders.acl = orders.acl.map((a) => (a.startsWith('app_rw=') ? a.replace('/', 'd/') : a));
    await writeFile(manifestFile(), JSON.stringify(manifest));
    try {
      const cause = await failureOf(
        env.client.workflow.execute('verifyBackup', {
          taskQueue: queue,
          workflowId: `${queue}/verify-tampered`,
          args: [{ cluster: 'main', database: 'app', backupId: BACKUP }],
        }),
      );
      expect(cause.type).toBe('VerificationFailed');
      expect(cause.message).toMatch(
        /table shop\.orders has privileges \{.*app_rw=arw\/app_owner.*\}, the backup has \{.*app_rw=arwd\/app_owner/,
      );
      expect(cause.message).not.toMatch(/shop\.order_summary|function/);
    } finally {
      await writeFile(manifestFile(), original);
    }

    // A backup from before pgwarden recorded privileges still verifies, and says what it skipped.
    const { privileges: _, ...old } = JSON.parse(original) as Record<string, unknown>;
    await writeFile(manifestFile(), JSON.stringify(old));
    try {
      await env.client.workflow.execute('verifyBackup', {
        taskQueue: queue,
        workflowId: `${queue}/verify-old`,
        args: [{ cluster: 'main', database: 'app', backupId: BACKUP }],
      });
      const after = JSON.parse(await readFile(manifestFile(), 'utf8')) as {
        verifications: { ok: boolean; detail: string }[];
      };
      expect(after.verifications.at(-1)).toMatchObject({
        ok: true,
        detail: expect.stringMatching(/not recorded in this backup.*not compared/),
      });
    } finally {
      await writeFile(manifestFile(), original);
    }
  });

  it('tables mode keeps the owner and privileges of the tables it restores', async () => {
    const result = await restore('tables', { tables: ['customers'] });
    expect(result.outcome).toBe('tables-restored');
    const into = result.tablesDatabase!;
    const acl = (db: string) =>
      cluster.query(
        `SELECT pg_get_userbyid(relowner) AS owner, (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(relacl) x) AS acl,
                            (SELECT array_agg(attname || ':' || attacl::text ORDER BY attname) FROM pg_attribute WHERE attrelid = 'public.customers'::regclass AND attacl IS NOT NULL) AS columns
                       FROM pg_class WHERE oid = 'public.customers'::regclass`,
        db,
      );
    const live = await acl('app');
    expect(live[0]).toMatchObject({ owner: 'app_owner', acl: expect.arrayContaining(['reporting=r/app_owner']) });
    expect(await acl(into)).toEqual(live);
    await cluster.query(`DROP DATABASE ${into}`);
  });

  it('a role the backup needs but the cluster lacks fails the plan, before approval, naming it; nothing is touched', async () => {
    await cluster.query('ALTER ROLE reporting RENAME TO reporting_renamed');
    const databases = async () =>
      (await cluster.query<{ datname: string }>('SELECT datname FROM pg_database ORDER BY 1')).map((r) => r.datname);
    const before = { databases: await databases(), catalogs: await catalogs('app') };
    try {
      const handle = await env.client.workflow.start('restoreDatabase', {
        taskQueue: queue,
        workflowId: `${queue}/missing-role`,
        args: [{ cluster: 'main', database: 'app', backupId: BACKUP }],
      });
      const cause = await failureOf(handle.result());
      expect(cause.type).toBe('MissingRoles');
      expect(cause.nonRetryable).toBe(true);
      expect(cause.message).toContain('lacks the roles reporting that');
      expect(cause.message).toContain(`| zstd -d | grep -E '^(CREATE|ALTER) ROLE ("?reporting"?)[ ;]' | psql`);
      expect(cause.message).toMatch(/globals\.sql: gpg --decrypt \S+\/globals\.sql\.zst\.gpg \| zstd -d \| grep/);
      // It never got as far as asking for approval.
      expect((await handle.query<Progress>('progress')).step).toBe('plan');
      expect({ databases: await databases(), catalogs: await catalogs('app') }).toEqual(before);

      // The command it prints creates exactly the missing role (gpg given this test's keyring and passphrase).
      const command = /globals\.sql: (.*) \(on the target/
        .exec(cause.message)![1]!
        .replace(/^gpg --decrypt /, `gpg ${key.decryptArgs('').slice(0, -1).join(' ')} `);
      await execa('sh', ['-c', command], {
        env: { ...cluster.env('postgres'), PATH: `${PG_BIN}:${process.env.PATH}` },
      });
      expect(
        await cluster.query(`SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'reporting%' ORDER BY 1`),
      ).toEqual([
        { rolname: 'reporting', rolcanlogin: false },
        { rolname: 'reporting_renamed', rolcanlogin: false },
      ]);
    } finally {
      await cluster.query('DROP ROLE IF EXISTS reporting; ALTER ROLE reporting_renamed RENAME TO reporting');
    }
  });

  it('a missing owner of an object of a kind the privileges record does not list (collation, text search dictionary) fails the plan, before approval', async () => {
    await cluster.query(
      `ALTER ROLE collation_owner RENAME TO collation_owner_renamed; ALTER ROLE "dict's ""owner""" RENAME TO dict_owner_renamed`,
    );
    const handle = await env.client.workflow.start('restoreDatabase', {
      taskQueue: queue,
      workflowId: `${queue}/missing-collation-owner`,
      args: [{ cluster: 'main', database: 'app', backupId: BACKUP }],
    });
    let settled = false;
    try {
      // Asking for approval would mean the plan passed: pg_restore would fail on ALTER COLLATION ... OWNER after it.
      const approval = (async () => {
        while (!settled) {
          if ((await handle.query<Progress>('progress')).step === 'approve')
            throw new Error('the plan passed and asked for approval');
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      const cause = await failureOf(Promise.race([handle.result(), approval]));
      expect(cause.type).toBe('MissingRoles');
      expect(cause.message).toContain(`lacks the roles collation_owner, dict's "owner" that`);
    } finally {
      settled = true;
      await handle.terminate().catch(() => undefined);
      await cluster.query(
        `ALTER ROLE collation_owner_renamed RENAME TO collation_owner; ALTER ROLE dict_owner_renamed RENAME TO "dict's ""owner"""`,
      );
    }
  });

  it('restoreDatabase keeps the encoding, collation, ctype and locale provider the database was created with', async () => {
    await cluster.query(`CREATE DATABASE legacy TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'`);
    await cluster.query(
      `CREATE DATABASE intl TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'de' LC_COLLATE 'C.utf8' LC_CTYPE 'C.utf8'`,
    );
    const properties = (db: string) =>
      cluster.query(
        `SELECT pg_encoding_to_char(encoding) AS encoding, datcollate, datctype, datlocprovider, daticulocale FROM pg_database WHERE datname = '${db}'`,
      );
    const sorted = async (db: string) =>
      (
        await cluster.query<{ s: string[] }>(
          `SELECT array_agg(x ORDER BY x) AS s FROM (VALUES ('a'), ('B'), ('é')) v(x)`,
          db,
        )
      )[0]!.s;
    try {
      for (const db of ['legacy', 'intl']) {
        await cluster.query(`CREATE TABLE names (n text); INSERT INTO names VALUES ('café')`, db);
        const before = { properties: await properties(db), sorted: await sorted(db) };
        const id = '20261122T030000Z';
        await env.client.workflow.execute('fullBackup', {
          taskQueue: queue,
          workflowId: `${queue}/backup-${db}`,
          args: [{ cluster: 'main', database: db, backupId: id }],
        });
        const handle = await env.client.workflow.start('restoreDatabase', {
          taskQueue: queue,
          workflowId: `${queue}/restore-${db}`,
          args: [{ cluster: 'main', database: db, backupId: id }],
        });
        while ((await handle.query<Progress>('progress')).step !== 'approve')
          await new Promise((r) => setTimeout(r, 200));
        await handle.signal('approve', { approver: 'alice', reason: 'locale test' });
        expect(await handle.result()).toMatchObject({ outcome: 'restored' });
        expect({ properties: await properties(db), sorted: await sorted(db) }).toEqual(before);
        expect(await cluster.query(`SELECT n, octet_length(n) AS bytes FROM names`, db)).toEqual([
          { n: 'café', bytes: db === 'legacy' ? 4 : 5 },
        ]);
      }
      expect((await properties('legacy'))[0]).toMatchObject({ encoding: 'LATIN1', datcollate: 'C', datctype: 'C' });
      expect((await properties('intl'))[0]).toMatchObject({
        encoding: 'UTF8',
        datlocprovider: 'i',
        daticulocale: 'de',
      });
      expect(await sorted('intl')).toEqual(['a', 'B', 'é']); // ICU's order, not the cluster's C order
    } finally {
      for (const db of await cluster.query<{ datname: string }>(
        `SELECT datname FROM pg_database WHERE datname ~ '^(legacy|intl)'`,
      )) {
        await cluster.query(`DROP DATABASE "${db.datname}" WITH (FORCE)`);
      }
    }
  });

  it('a collation the target host lacks fails the plan, before approval and before the preRestore hook stops the applications; nothing is touched', async () => {
    // As a backup taken on a host with a locale this one lacks: the manifest's record says so.
    const original = await readFile(manifestFile(), 'utf8');
    const manifest = JSON.parse(original) as { privileges: { database: { collate: string } } };
    manifest.privileges.database.collate = 'xx_XX.UTF-8';
    await writeFile(manifestFile(), JSON.stringify(manifest));
    const hookLog = join(dir, 'locale-hooks.log');
    const hookQueue = uniqueQueue('fidelity-locale');
    const hooked = testConfig({ cluster, repository: join(dir, 'repo'), taskQueue: hookQueue, key });
    hooked.clusters.main!.hooks = {
      preRestore: ['/bin/sh', '-c', `echo stop >> ${hookLog}`],
      postRestore: ['/bin/sh', '-c', `echo start >> ${hookLog}`],
    };
    const hookedWorker = await startPgwardenWorker(env, hooked, testSecrets(cluster, key));
    const databases = async () =>
      (await cluster.query<{ datname: string }>('SELECT datname FROM pg_database ORDER BY 1')).map((r) => r.datname);
    const before = { databases: await databases(), catalogs: await catalogs('app') };
    const handle = await env.client.workflow.start('restoreDatabase', {
      taskQueue: hookQueue,
      workflowId: `${hookQueue}/restore`,
      args: [{ cluster: 'main', database: 'app', backupId: BACKUP }],
    });
    let settled = false;
    try {
      const approval = (async () => {
        while (!settled) {
          if ((await handle.query<Progress>('progress')).step !== 'plan')
            throw new Error('the plan passed and asked for approval');
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      const started = Date.now();
      const cause = await failureOf(Promise.race([handle.result(), approval]));
      expect(cause.type).toBe('LocaleUnavailable');
      expect(cause.nonRetryable).toBe(true);
      expect(cause.message).toMatch(
        /^cluster "main" cannot create a database with the backup's encoding \w+, collation 'xx_XX\.UTF-8', ctype '[^']+'.*: invalid locale name: "xx_XX\.UTF-8"\. Install the locale/,
      );
      expect(Date.now() - started).toBeLessThan(30_000); // not retried
      expect({ databases: await databases(), catalogs: await catalogs('app') }).toEqual(before); // the throwaway database is gone too
      await expect(readFile(hookLog, 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      settled = true;
      await handle.terminate().catch(() => undefined);
      await hookedWorker.stop();
      await writeFile(manifestFile(), original);
    }
  });

  it("the roles a dump needs: a subscription's owner (a shared catalog) is named; the owner of another session's temporary table (pg_dump skips it) is not", async () => {
    await cluster.query(`CREATE ROLE sub_owner SUPERUSER NOLOGIN; CREATE ROLE temp_owner LOGIN PASSWORD 'temp-pw'`);
    await cluster.query('CREATE DATABASE roles_probe');
    const temp = new pg.Client({
      host: cluster.host,
      port: cluster.port,
      user: 'temp_owner',
      password: 'temp-pw',
      database: 'roles_probe',
    });
    const reader = new pg.Client({
      host: cluster.host,
      port: cluster.port,
      user: cluster.user,
      password: cluster.password,
      database: 'roles_probe',
    });
    try {
      await cluster.query(
        `CREATE SUBSCRIPTION probe_sub CONNECTION 'host=127.0.0.1 dbname=nowhere' PUBLICATION nothing WITH (connect = false, slot_name = NONE)`,
        'roles_probe',
      );
      await cluster.query('ALTER SUBSCRIPTION probe_sub OWNER TO sub_owner', 'roles_probe');
      await temp.connect();
      await temp.query('CREATE TEMP TABLE scratch (x int)'); // held while the roles are read
      await reader.connect();
      await reader.query('BEGIN READ ONLY');
      const { roles } = await readPrivileges(reader);
      await reader.query('COMMIT');
      expect(roles).toContain('sub_owner');
      expect(roles).not.toContain('temp_owner');
    } finally {
      await temp.end().catch(() => undefined);
      await reader.end().catch(() => undefined);
      await cluster.query('DROP SUBSCRIPTION IF EXISTS probe_sub', 'roles_probe');
      await cluster.query('DROP DATABASE roles_probe WITH (FORCE)');
      await cluster.query('DROP ROLE sub_owner; DROP ROLE temp_owner');
    }
  });

  it('a pgwarden user that cannot act as the owners (not a superuser) fails the plan, saying so', async () => {
    await cluster.query(
      `CREATE ROLE pgwarden_limited LOGIN CREATEDB PASSWORD 'limited-pw'; GRANT app_rw TO pgwarden_limited`,
    );
    const limitedQueue = uniqueQueue('fidelity-limited');
    const limited = await startPgwardenWorker(
      env,
      testConfig({
        cluster: { ...cluster, user: 'pgwarden_limited' },
        repository: join(dir, 'repo'),
        taskQueue: limitedQueue,
        key,
      }),
      { ...testSecrets(cluster, key), [PASSWORD_ENV]: 'limited-pw' },
    );
    try {
      const cause = await failureOf(
        env.client.workflow.execute('restoreDatabase', {
          taskQueue: limitedQueue,
          workflowId: `${limitedQueue}/restore`,
          args: [{ cluster: 'main', database: 'app', backupId: BACKUP }],
        }),
      );
      expect(cause.type).toBe('MissingRoles');
      expect(cause.message).toMatch(
        /^pgwarden's user on cluster "main" cannot act as "?Audit Team"?, app_owner, app_ro, .*: restoring owners and privileges needs a superuser/,
      );
      expect(cause.message).not.toMatch(/cannot act as .*\bapp_rw\b/);
    } finally {
      await limited.stop();
      await cluster.query('DROP ROLE pgwarden_limited');
    }
  });
});

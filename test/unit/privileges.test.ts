// The database properties pgwarden applies itself (pg_restore emits them only with --create), and the
// comparison verifyBackup reports.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import {
  alterSettingSql,
  createDatabaseSql,
  databasePropertiesSql,
  parseAclItem,
  splitSettingList,
} from '../../src/lib/databaseSql.js';
import {
  comparePrivileges,
  grepRolesCommand,
  localeProviderProblem,
  type Privileges,
} from '../../src/lib/privileges.js';

describe('settings', () => {
  it('splits list settings as PostgreSQL does: quotes protect commas and case, no downcasing', () => {
    expect(splitSettingList('shop, "$user", public')).toEqual(['shop', '$user', 'public']);
    expect(splitSettingList('"a,b" ,  "Say ""hi"""')).toEqual(['a,b', 'Say "hi"']);
    expect(splitSettingList('MixedCase')).toEqual(['MixedCase']);
    expect(splitSettingList('""')).toEqual(['']);
    expect(splitSettingList('')).toEqual([]);
  });

  it('writes ALTER DATABASE / ALTER ROLE IN DATABASE as pg_dump does', () => {
    expect(alterSettingSql('app_restore_x', null, 'search_path=shop, "$user", public')).toBe(
      `ALTER DATABASE "app_restore_x" SET "search_path" TO 'shop', '$user', 'public'`,
    );
    expect(alterSettingSql('db', 'app ro', 'statement_timeout=5s')).toBe(
      `ALTER ROLE "app ro" IN DATABASE "db" SET "statement_timeout" TO '5s'`,
    );
    expect(alterSettingSql('db', null, "app.note=it's a=b")).toBe(`ALTER DATABASE "db" SET "app.note" TO 'it''s a=b'`);
    expect(alterSettingSql('db', null, 'app.path=C:\\x')).toBe(`ALTER DATABASE "db" SET "app.path" TO E'C:\\\\x'`);
    expect(alterSettingSql('db', null, 'search_path=""')).toBe(`ALTER DATABASE "db" SET "search_path" TO ''`);
  });
});

describe('database ACL', () => {
  it('parses aclitems with PUBLIC, quoted names and grant options', () => {
    expect(parseAclItem('=Tc/app_owner')).toEqual({
      grantee: '',
      grantor: 'app_owner',
      privileges: [
        { letter: 'T', grantable: false },
        { letter: 'c', grantable: false },
      ],
    });
    expect(parseAclItem('"Audit ""T"" Team"=c*T/"Owner"')).toEqual({
      grantee: 'Audit "T" Team',
      grantor: 'Owner',
      privileges: [
        { letter: 'c', grantable: true },
        { letter: 'T', grantable: false },
      ],
    });
    expect(() => parseAclItem('nonsense')).toThrow(/not an aclitem/);
  });

  it('gives the database the owner, limit, comment, settings, then the ACL from nothing, owner grants first', () => {
    const sql = databasePropertiesSql('app_restore_1', {
      owner: 'app_owner',
      acl: ['app_ro=c/"Audit Team"', '"Audit Team"=c*T/app_owner', 'app_owner=CTc/app_owner'],
      connectionLimit: 50,
      comment: "the owner's copy",
      settings: [
        { role: null, config: ['work_mem=8MB'] },
        { role: 'app_ro', config: ['statement_timeout=5s'] },
      ],
    });
    expect(sql).toEqual([
      'ALTER DATABASE "app_restore_1" OWNER TO "app_owner"',
      'ALTER DATABASE "app_restore_1" CONNECTION LIMIT 50',
      `COMMENT ON DATABASE "app_restore_1" IS 'the owner''s copy'`,
      `ALTER DATABASE "app_restore_1" SET "work_mem" TO '8MB'`,
      `ALTER ROLE "app_ro" IN DATABASE "app_restore_1" SET "statement_timeout" TO '5s'`,
      'REVOKE ALL ON DATABASE "app_restore_1" FROM PUBLIC',
      'REVOKE ALL ON DATABASE "app_restore_1" FROM "app_owner"',
      'GRANT TEMPORARY ON DATABASE "app_restore_1" TO "Audit Team"',
      'GRANT CONNECT ON DATABASE "app_restore_1" TO "Audit Team" WITH GRANT OPTION',
      'GRANT CREATE, TEMPORARY, CONNECT ON DATABASE "app_restore_1" TO "app_owner"',
      'SET ROLE "Audit Team"',
      'GRANT CONNECT ON DATABASE "app_restore_1" TO "app_ro"',
      'RESET ROLE',
    ]);
  });

  it('replays chains of grant options so that each grantor holds the option when it grants (sorted ACL text puts them backwards)', () => {
    const acl = ['amy=c/yan', 'o=CTc/o', 'yan=c*/zed', 'zed=c*/o'];
    const sql = databasePropertiesSql('d', { owner: 'o', acl, connectionLimit: -1, comment: null, settings: [] });
    expect(sql.slice(3)).toEqual([
      'GRANT CREATE, TEMPORARY, CONNECT ON DATABASE "d" TO "o"',
      'GRANT CONNECT ON DATABASE "d" TO "zed" WITH GRANT OPTION',
      'SET ROLE "zed"',
      'GRANT CONNECT ON DATABASE "d" TO "yan" WITH GRANT OPTION',
      'RESET ROLE',
      'SET ROLE "yan"',
      'GRANT CONNECT ON DATABASE "d" TO "amy"',
      'RESET ROLE',
    ]);
  });

  it('leaves a default ACL and connection limit alone', () => {
    expect(
      databasePropertiesSql('d', { owner: 'o', acl: null, connectionLimit: -1, comment: null, settings: [] }),
    ).toEqual(['ALTER DATABASE "d" OWNER TO "o"']);
  });
});

describe('comparePrivileges', () => {
  const base: Privileges = {
    database: {
      owner: 'app_owner',
      acl: ['=c/app_owner', 'app_owner=CTc/app_owner'],
      connectionLimit: 50,
      comment: 'c',
      settings: [{ role: null, config: ['work_mem=8MB'] }],
    },
    objects: [
      {
        kind: 'table',
        name: 'shop.orders',
        owner: 'app_owner',
        acl: ['app_owner=arwdDxt/app_owner', 'app_rw=arw/app_owner'],
      },
      {
        kind: 'function',
        name: 'shop.order_count()',
        owner: 'app_owner',
        acl: ['app_owner=X/app_owner'],
        detail: 'security definer',
      },
    ],
    roles: ['app_owner', 'app_rw'],
  };
  const copy = (): Privileges => JSON.parse(JSON.stringify(base)) as Privileges;
  const V15 = { backup: 150004, restored: 150004 };

  it('finds nothing when equal, whatever the order of ACL items of the database', () => {
    const same = copy();
    same.database.acl = [...same.database.acl!].reverse();
    expect(comparePrivileges(base, same, V15)).toEqual([]);
  });

  it('names every difference', () => {
    const restored = copy();
    restored.database.owner = 'postgres';
    restored.database.acl = null;
    restored.database.connectionLimit = -1;
    restored.database.comment = null;
    restored.database.settings = [];
    restored.objects[0]!.acl = ['app_owner=arwdDxt/app_owner'];
    restored.objects[1]!.owner = 'postgres';
    delete restored.objects[1]!.detail;
    restored.objects.push({ kind: 'view', name: 'shop.extra', owner: 'postgres', acl: [] });
    expect(comparePrivileges(base, restored, V15)).toEqual([
      'database owner is postgres, the backup has app_owner',
      'database privileges are none, the backup has {=c/app_owner,app_owner=CTc/app_owner}',
      'database connection limit is -1, the backup has 50',
      'database comment is none, the backup has c',
      'database settings are {}, the backup has {work_mem=8MB}',
      'table shop.orders has privileges {app_owner=arwdDxt/app_owner}, the backup has {app_owner=arwdDxt/app_owner,app_rw=arw/app_owner}',
      'function shop.order_count() is owned by postgres, the backup has app_owner',
      'function shop.order_count() is plain, the backup has security definer',
      'view shop.extra is not in the backup',
    ]);
    expect(comparePrivileges(base, { ...restored, objects: [] }, V15)).toContain('table shop.orders is missing');
  });

  it('lists at most 25 differences, then how many more', () => {
    const many = copy();
    many.objects = Array.from({ length: 40 }, (_, i) => ({ kind: 'table', name: `t${i}`, owner: 'o', acl: [] }));
    const problems = comparePrivileges({ ...copy(), objects: [] }, many, V15);
    expect(problems).toHaveLength(26);
    expect(problems.at(-1)).toBe('and 15 more differences');
  });

  describe('the database locale across server versions', () => {
    const withLocale = (localeProvider: string | null, icuLocale: string | null): Privileges => {
      const p = copy();
      Object.assign(p.database, {
        encoding: 'UTF8',
        collate: 'en_US.UTF-8',
        ctype: 'en_US.UTF-8',
        localeProvider,
        icuLocale,
      });
      return p;
    };
    it('a 13/14 backup (no provider recorded) restored on 15+ (libc) is the same', () => {
      expect(
        comparePrivileges(withLocale(null, null), withLocale('c', null), { backup: 140010, restored: 150004 }),
      ).toEqual([]);
      expect(
        comparePrivileges(withLocale(null, null), withLocale('c', null), { backup: 130015, restored: 170002 }),
      ).toEqual([]);
    });
    it('a 13/14 backup restored with ICU (template0 of an ICU cluster) differs', () => {
      expect(
        comparePrivileges(withLocale(null, null), withLocale('i', 'en-US'), { backup: 140010, restored: 160004 }),
      ).toEqual(['database locale provider is i, the backup has c']);
    });
    it('ICU locale names compared on the same major only (16 rewrites them to language tags)', () => {
      expect(
        comparePrivileges(withLocale('i', 'de_DE'), withLocale('i', 'de-DE'), { backup: 150004, restored: 160004 }),
      ).toEqual([]);
      expect(
        comparePrivileges(withLocale('i', 'de'), withLocale('i', 'fr'), { backup: 160004, restored: 160008 }),
      ).toEqual(['database ICU locale is fr, the backup has de']);
      expect(
        comparePrivileges(withLocale('i', 'de'), withLocale('c', null), { backup: 150004, restored: 160004 }),
      ).toEqual(['database locale provider is c, the backup has i']);
    });
  });
});

describe("grepRolesCommand: the missing roles' lines from pg_dumpall globals, as the shell runs it", () => {
  // As pg_dumpall 15 writes them: names quoted where needed, an embedded double quote doubled.
  const globals = [
    'CREATE ROLE reporting;',
    'ALTER ROLE reporting WITH NOSUPERUSER NOLOGIN;',
    'CREATE ROLE reporting2;',
    'CREATE ROLE "o\'brien";',
    'ALTER ROLE "o\'brien" WITH NOSUPERUSER LOGIN;',
    'CREATE ROLE "say ""hi""";',
    'ALTER ROLE "say ""hi""" WITH NOSUPERUSER NOLOGIN;',
    'CREATE ROLE "Audit Team";',
    'CREATE ROLE "user";',
    'CREATE ROLE "a.b|c";',
    'CREATE ROLE axb;',
    'GRANT reporting TO "o\'brien";',
    '',
  ].join('\n');
  const run = (roles: string[]) =>
    execFileSync('sh', ['-c', `${grepRolesCommand(roles)} || true`], { input: globals, encoding: 'utf8' })
      .split('\n')
      .filter(Boolean);

  it("keeps exactly the named roles' CREATE and ALTER lines, whatever the names hold", () => {
    expect(run(["o'brien"])).toEqual(['CREATE ROLE "o\'brien";', 'ALTER ROLE "o\'brien" WITH NOSUPERUSER LOGIN;']);
    expect(run(['say "hi"'])).toEqual([
      'CREATE ROLE "say ""hi""";',
      'ALTER ROLE "say ""hi""" WITH NOSUPERUSER NOLOGIN;',
    ]);
    expect(run(['reporting', 'Audit Team', 'user'])).toEqual([
      'CREATE ROLE reporting;',
      'ALTER ROLE reporting WITH NOSUPERUSER NOLOGIN;',
      'CREATE ROLE "Audit Team";',
      'CREATE ROLE "user";',
    ]);
    expect(run(['a.b|c'])).toEqual(['CREATE ROLE "a.b|c";']);
    expect(run(['nobody'])).toEqual([]);
  });
});

describe('createDatabaseSql: a restore is created as the original was', () => {
  const base = { owner: 'o', acl: null, connectionLimit: -1, comment: null, settings: [] };
  it('from template0 with the recorded encoding, collation, ctype and provider', () => {
    expect(
      createDatabaseSql(
        'x',
        { ...base, encoding: 'LATIN1', collate: 'C', ctype: "it's", localeProvider: 'c', icuLocale: null },
        150004,
      ),
    ).toBe(
      `CREATE DATABASE "x" TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'it''s' LOCALE_PROVIDER libc`,
    );
    expect(
      createDatabaseSql(
        'x',
        { ...base, encoding: 'UTF8', collate: 'C', ctype: 'C', localeProvider: 'i', icuLocale: 'de' },
        150004,
      ),
    ).toBe(
      `CREATE DATABASE "x" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' LOCALE_PROVIDER icu ICU_LOCALE 'de'`,
    );
    // A backup of PostgreSQL 14 (no provider) onto 14.
    expect(
      createDatabaseSql(
        'x',
        { ...base, encoding: 'UTF8', collate: 'C', ctype: 'C', localeProvider: null, icuLocale: null },
        140010,
      ),
    ).toBe(`CREATE DATABASE "x" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
  });
  it('a 13/14 backup (no provider recorded) is libc: said explicitly on 15+, so an ICU template0 is not taken', () => {
    const pg14 = {
      ...base,
      encoding: 'UTF8',
      collate: 'en_US.UTF-8',
      ctype: 'en_US.UTF-8',
      localeProvider: null,
      icuLocale: null,
    };
    expect(createDatabaseSql('x', pg14, 150004)).toBe(
      `CREATE DATABASE "x" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'en_US.UTF-8' LC_CTYPE 'en_US.UTF-8' LOCALE_PROVIDER libc`,
    );
    expect(createDatabaseSql('x', { ...pg14, localeProvider: 'c' }, 130015)).toBe(
      `CREATE DATABASE "x" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'en_US.UTF-8' LC_CTYPE 'en_US.UTF-8'`,
    );
  });
  it('never emits a clause the target server lacks; a provider it cannot hold fails naming it', () => {
    const icu = { ...base, encoding: 'UTF8', collate: 'C', ctype: 'C', localeProvider: 'i', icuLocale: 'de' };
    const builtin = { ...base, encoding: 'UTF8', collate: 'C', ctype: 'C', localeProvider: 'b', icuLocale: 'C.UTF-8' };
    expect(localeProviderProblem(icu, 150004)).toBeUndefined();
    expect(localeProviderProblem(icu, 140010)).toBe(
      "the backup's database uses the icu locale provider, which needs PostgreSQL 15 or later; the server is PostgreSQL 14",
    );
    expect(() => createDatabaseSql('x', icu, 140010)).toThrow(/icu locale provider, which needs PostgreSQL 15/);
    expect(localeProviderProblem(builtin, 160004)).toBe(
      "the backup's database uses the builtin locale provider, which needs PostgreSQL 17 or later; the server is PostgreSQL 16",
    );
    expect(() => createDatabaseSql('x', builtin, 160004)).toThrow(/builtin locale provider, which needs PostgreSQL 17/);
    expect(createDatabaseSql('x', builtin, 170002)).toBe(
      `CREATE DATABASE "x" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'`,
    );
    expect(localeProviderProblem(undefined, 130000)).toBeUndefined();
  });
  it('as before for backups that did not record them', () => {
    expect(createDatabaseSql('x', base, 150004)).toBe('CREATE DATABASE "x"');
    expect(createDatabaseSql('x', undefined, 150004)).toBe('CREATE DATABASE "x"');
  });
});

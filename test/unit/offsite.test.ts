import { describe, expect, it } from 'vitest';
import {
  checkRemote,
  knownRemoteKeys,
  missingOnRemote,
  planContentCheck,
  type GroupMembers,
  type LocalObject,
  type RemoteEntry,
} from '../../src/lib/offsite.js';
import {
  DEFAULT_OFFSITE_RETENTION,
  offsiteRetention,
  planRemoteRetention,
  remoteBackups,
  type RemoteBackup,
} from '../../src/lib/offsiteRetention.js';
import { walNameOf } from '../../src/lib/offsiteKeys.js';

const sha = (c: string) => c.repeat(64);
const dump = 'main/logical/app/20261101T020000Z/dump.pgdump.zst.gpg';
const manifest = 'main/logical/app/20261101T020000Z/manifest.json';
const seg = 'main/wal/000000010000000000000003.zst.gpg';
const rec = 'main/wal/000000010000000000000003.json';

const local: LocalObject[] = [
  {
    key: manifest,
    kind: 'logical',
    bytes: 900,
    sha256: sha('m'.replace('m', 'a')),
    marker: true,
    committedAt: '2026-11-01T02:00:05Z',
  },
  { key: dump, kind: 'logical', bytes: 1000, sha256: sha('b'), marker: false, committedAt: '2026-11-01T02:00:05Z' },
  { key: rec, kind: 'wal', bytes: 300, sha256: sha('c'), marker: false, committedAt: '2026-11-01T02:00:05Z' },
  { key: seg, kind: 'wal', bytes: 5000, sha256: sha('d'), marker: false, committedAt: '2026-11-01T02:00:05Z' },
];
const remoteOf = (objects: LocalObject[]): Map<string, RemoteEntry> =>
  new Map(objects.map((o) => [o.key, { key: o.key, bytes: o.bytes, recordedSha256: o.sha256 }]));

describe('missingOnRemote', () => {
  it('uploads data before WAL records before manifests, and skips what the remote has whatever it holds', () => {
    expect(missingOnRemote(local, new Map()).map((o) => o.key)).toEqual([dump, seg, rec, manifest]);
    const remote = remoteOf(local);
    remote.set(dump, { key: dump, bytes: 1, recordedSha256: sha('f') });
    expect(missingOnRemote(local, remote)).toEqual([]);
  });
});

describe('checkRemote', () => {
  const check = (remote: Map<string, RemoteEntry>, content = new Map<string, string>(), scope: string[] = []) =>
    checkRemote({ repository: 'offsite', local, remote, content, contentScope: new Set(scope) });

  it('passes a complete, matching remote and counts per kind', () => {
    const remote = remoteOf(local);
    const report = check(remote, new Map([...remote.values()].map((r) => [r.key, r.recordedSha256!])), [
      ...remote.keys(),
    ]);
    expect(report.problems).toEqual([]);
    expect(report.counts).toEqual({
      logical: { local: 2, remote: 2 },
      base: { local: 0, remote: 0 },
      wal: { local: 2, remote: 2 },
    });
    expect(report.contentChecked).toBe(4);
  });

  it('does not count objects committed while the sync ran as missing (the next sync ships them)', () => {
    const late: LocalObject = {
      key: 'main/wal/000000010000000000000004.zst.gpg',
      kind: 'wal',
      bytes: 10,
      sha256: sha('e'),
      marker: false,
      committedAt: '2026-11-22T05:00:30Z',
    };
    const remote = remoteOf(local);
    const report = checkRemote({
      repository: 'offsite',
      local: [...local, late],
      remote,
      content: new Map(),
      contentScope: new Set(),
      syncedAt: '2026-11-22T05:00:00Z',
    });
    expect(report).toMatchObject({ notShippedYet: 1, problems: [] });
    // On its own (no sync): a WAL file nothing of which is on the remote is not shipped yet...
    const alone = checkRemote({
      repository: 'offsite',
      local: [...local, late],
      remote,
      content: new Map(),
      contentScope: new Set(),
    });
    expect(alone).toMatchObject({ notShippedYet: 1, problems: [] });
    // ...but one whose record is there lacks its data.
    const lateRecord = 'main/wal/000000010000000000000004.json';
    remote.set(lateRecord, { key: lateRecord, bytes: 300, recordedSha256: sha('f') });
    const partial = checkRemote({
      repository: 'offsite',
      local: [...local, late],
      remote,
      content: new Map(),
      contentScope: new Set(),
    });
    expect(partial.problems.map((p) => [p.problem, p.key])).toEqual([['missing', late.key]]);
  });

  it('names a missing, a short and a differing object', () => {
    const remote = remoteOf(local);
    remote.delete(seg);
    remote.set(dump, { key: dump, bytes: 999, recordedSha256: sha('b') });
    remote.set(rec, { key: rec, bytes: 300, recordedSha256: sha('e') });
    const problems = check(remote).problems.map((p) => [p.problem, p.key]);
    // Without its data, the record still belongs to the WAL file; the data is missing.
    expect(problems).toEqual([
      ['short', dump],
      ['differs', rec],
      ['missing', seg],
    ]);
  });

  it('holds a manifest to its own recorded sha256, not the local one (verifications are appended locally)', () => {
    const remote = remoteOf(local);
    remote.set(manifest, { key: manifest, bytes: 700, recordedSha256: sha('9') });
    expect(check(remote, new Map([[manifest, sha('9')]]), [manifest]).problems).toEqual([]);
    expect(check(remote, new Map([[manifest, sha('8')]]), [manifest]).problems.map((p) => p.problem)).toEqual([
      'corrupt',
    ]);
  });

  it('finds content that no longer matches its recorded sha256 (a flipped byte)', () => {
    const remote = remoteOf(local);
    const report = check(remote, new Map([[dump, sha('0')]]), [dump]);
    expect(report.problems).toEqual([
      { key: dump, problem: 'corrupt', detail: `content sha256 ${sha('0')}, recorded ${sha('b')}` },
    ]);
  });

  it('reports unknown objects and objects without a recorded sha256', () => {
    const remote = remoteOf(local);
    remote.set('main/logical/app/20261102T020000Z/dump.pgdump', {
      key: 'main/logical/app/20261102T020000Z/dump.pgdump',
      bytes: 5,
      recordedSha256: sha('1'),
    });
    remote.set('main/stray.txt', { key: 'main/stray.txt', bytes: 5 });
    remote.set(seg, { key: seg, bytes: 5000 });
    const problems = check(remote).problems.map((p) => [p.problem, p.key]);
    expect(problems).toEqual([
      ['unknown', 'main/logical/app/20261102T020000Z/dump.pgdump'],
      ['unknown', 'main/stray.txt'],
      ['unrecorded', seg],
    ]);
  });

  it('does not let counts pass a check: same count, one object swapped', () => {
    const remote = remoteOf(local);
    remote.delete(dump);
    const other = 'main/logical/app/20261101T020000Z/globals.sql.zst.gpg';
    remote.set(other, { key: other, bytes: 1000, recordedSha256: sha('b') });
    const report = check(remote);
    expect(report.counts.logical).toEqual({ local: 2, remote: 2 });
    expect(report.problems.map((p) => [p.problem, p.key])).toEqual([['missing', dump]]);
  });
});

describe('knownRemoteKeys and walNameOf', () => {
  it('knows files of committed backups and WAL files with records', () => {
    const keys = [
      dump,
      manifest,
      seg,
      rec,
      'main/wal/000000010000000000000004.zst.gpg',
      'main/base/20261101T030000Z/base.tar.zst',
    ];
    expect([...knownRemoteKeys(keys)].sort()).toEqual([dump, manifest, rec, seg].sort());
    expect(walNameOf('00000002.history.zst.gpg')).toBe('00000002.history');
    expect(walNameOf('000000010000000000000003.json')).toBe('000000010000000000000003');
  });
});

describe('planRemoteRetention', () => {
  const now = new Date('2026-11-22T12:00:00Z');
  const keys = [
    'main/logical/app/20260101T020000Z/dump.pgdump.zst.gpg',
    'main/logical/app/20260101T020000Z/manifest.json',
    'main/logical/app/20261120T020000Z/dump.pgdump.zst.gpg',
    'main/logical/app/20261120T020000Z/manifest.json',
    'main/logical/old/20250101T020000Z/dump.pgdump.zst.gpg',
    'main/logical/old/20250101T020000Z/manifest.json',
    'main/base/20260101T030000Z/base.tar.zst.gpg',
    'main/base/20260101T030000Z/manifest.json',
    'main/base/20261115T030000Z/base.tar.zst.gpg',
    'main/base/20261115T030000Z/manifest.json',
    'main/wal/000000010000000000000002.zst.gpg',
    'main/wal/000000010000000000000002.json',
    'main/wal/000000010000000000000009.zst.gpg',
    'main/wal/000000010000000000000009.json',
    'main/wal/00000002.history.zst.gpg',
    'main/wal/00000002.history.json',
  ];
  const backups: RemoteBackup[] = remoteBackups(keys).map((b) =>
    b.kind === 'base'
      ? {
          ...b,
          wal: {
            backupId: b.backupId,
            timeline: 1,
            startLsn: b.backupId.startsWith('20260101') ? '0/2000028' : '0/9000028',
          },
        }
      : b,
  );

  it('removes backups past the age, keeps each group newest, and cuts WAL below the oldest kept base backup', () => {
    const d = planRemoteRetention(keys, backups, 90, now);
    expect(d.remove).toEqual([
      'main/base/20260101T030000Z/manifest.json',
      'main/base/20260101T030000Z/base.tar.zst.gpg',
      'main/logical/app/20260101T020000Z/manifest.json',
      'main/logical/app/20260101T020000Z/dump.pgdump.zst.gpg',
      'main/wal/000000010000000000000002.json',
      'main/wal/000000010000000000000002.zst.gpg',
    ]);
    // "old" has one backup only: kept however old; history files are never removed.
    expect(d.reasons.map((r) => r.what)).toEqual([
      'main/base/20260101T030000Z',
      'main/logical/app/20260101T020000Z',
      '000000010000000000000002',
    ]);
  });

  it('removes no WAL when no base backup anchors it, and nothing within the window', () => {
    const noBase = backups.filter((b) => b.kind === 'logical');
    expect(planRemoteRetention(keys, noBase, 90, now).remove.some((k) => k.includes('/wal/'))).toBe(false);
    expect(planRemoteRetention(keys, backups, 3650, now).remove).toEqual([]);
  });
});

describe('checkRemote against each backup manifest and WAL record (members)', () => {
  const members = new Map<string, GroupMembers>([
    ['main/logical/app/20261101T020000Z', { files: ['manifest.json', 'dump.pgdump.zst.gpg'] }],
    [
      'main/wal/000000010000000000000003',
      { files: ['000000010000000000000003.json', '000000010000000000000003.zst.gpg'] },
    ],
  ]);
  const run = (remote: Map<string, RemoteEntry>, m = members) =>
    checkRemote({ repository: 'offsite', local, remote, content: new Map(), contentScope: new Set(), members: m });

  it('names a foreign object in a backup directory even when it carries a matching sha256 record', () => {
    const remote = remoteOf(local);
    const foreign = 'main/logical/app/20261101T020000Z/extra.bin';
    remote.set(foreign, { key: foreign, bytes: 7, recordedSha256: sha('7') });
    const walForeign = 'main/wal/000000010000000000000003.zst';
    remote.set(walForeign, { key: walForeign, bytes: 7, recordedSha256: sha('7') });
    const problems = run(remote).problems.map((p) => [p.problem, p.key]);
    expect(problems).toEqual([
      ['unexpected', foreign],
      ['unexpected', walForeign],
    ]);
    // Without the manifests' lists (the old check) both pass: the reason for this one.
    expect(
      checkRemote({ repository: 'offsite', local, remote, content: new Map(), contentScope: new Set() }).problems,
    ).toEqual([]);
  });

  it('names an artifact the remote manifest lists but the remote lacks, once, also for a backup no longer local', () => {
    const remote = remoteOf(local);
    remote.delete(dump);
    expect(run(remote).problems.map((p) => [p.problem, p.key])).toEqual([['missing', dump]]);
    const gone = 'main/logical/app/20261001T020000Z';
    remote.set(`${gone}/manifest.json`, { key: `${gone}/manifest.json`, bytes: 5, recordedSha256: sha('5') });
    const withGone = new Map(members).set(gone, {
      files: ['manifest.json', 'dump.pgdump.zst.gpg', 'globals.sql.zst.gpg'],
    });
    expect(run(remote, withGone).problems.map((p) => [p.problem, p.key])).toEqual([
      ['missing', `${gone}/dump.pgdump.zst.gpg`],
      ['missing', `${gone}/globals.sql.zst.gpg`],
      ['missing', dump],
    ]);
  });

  it('reports a manifest that cannot be read, on the manifest', () => {
    const remote = remoteOf(local);
    const m = new Map(members).set('main/logical/app/20261101T020000Z', {
      unreadable: 'cannot be read or parsed: bad JSON',
    });
    expect(run(remote, m).problems).toEqual([
      { key: manifest, problem: 'unreadable', detail: 'cannot be read or parsed: bad JSON' },
    ]);
  });
});

describe('planContentCheck', () => {
  it('reads back everything but objects in an archive storage class, which are counted', () => {
    const remote = remoteOf(local);
    remote.set(dump, { ...remote.get(dump)!, storageClass: 'GLACIER' });
    remote.set(seg, { ...remote.get(seg)!, storageClass: 'DEEP_ARCHIVE' });
    remote.set(rec, { ...remote.get(rec)!, storageClass: 'GLACIER_IR' }); // instant retrieval: readable
    const all = planContentCheck(remote, 'all');
    expect([...all.read].sort()).toEqual([manifest, rec].sort());
    expect([...all.archived].sort()).toEqual([dump, seg].sort());
    const some = planContentCheck(remote, [dump, manifest, 'main/wal/absent.json']);
    expect([[...some.read], [...some.archived]]).toEqual([[manifest], [dump]]);
    const report = checkRemote({
      repository: 'offsite',
      local,
      remote,
      content: new Map([
        [manifest, sha('a')],
        [rec, sha('c')],
      ]),
      contentScope: all.read,
      archived: all.archived,
    });
    expect(report).toMatchObject({ problems: [], contentChecked: 2, archived: 2 });
  });

  it('holds Intelligent-Tiering objects in its archive tiers (ArchiveStatus from HEAD) to size and recorded sha256, reads back the other tiers', () => {
    const remote = remoteOf(local);
    const tiering = { storageClass: 'INTELLIGENT_TIERING' };
    remote.set(dump, { ...remote.get(dump)!, ...tiering, archiveStatus: 'DEEP_ARCHIVE_ACCESS' });
    remote.set(seg, { ...remote.get(seg)!, ...tiering, archiveStatus: 'ARCHIVE_ACCESS' });
    remote.set(rec, { ...remote.get(rec)!, ...tiering }); // frequent / infrequent / archive instant access: no ArchiveStatus, readable
    const all = planContentCheck(remote, 'all');
    expect([...all.read].sort()).toEqual([manifest, rec].sort());
    expect([...all.archived].sort()).toEqual([dump, seg].sort());
    // Size is still held: an archived object cut short is named although it is not read back.
    remote.set(dump, { ...remote.get(dump)!, bytes: remote.get(dump)!.bytes - 1 });
    const report = checkRemote({
      repository: 'offsite',
      local,
      remote,
      content: new Map([
        [manifest, sha('a')],
        [rec, sha('c')],
      ]),
      contentScope: all.read,
      archived: all.archived,
    });
    expect(report.problems.map((p) => [p.key, p.problem])).toEqual([[dump, 'short']]);
  });
});

describe('tiered offsite retention', () => {
  const now = new Date('2026-11-22T12:00:00Z');
  // A year of daily logical backups of one database.
  const ids = Array.from({ length: 365 }, (_, i) =>
    new Date(now.getTime() - (i + 1) * 86_400_000)
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z')
      .replace(/T\d+Z$/, 'T020000Z'),
  );
  const keys = ids.flatMap((id) => [
    `main/logical/app/${id}/manifest.json`,
    `main/logical/app/${id}/dump.pgdump.zst.gpg`,
  ]);
  const backups = remoteBackups(keys);

  it('keeps a month of dailies, ~90 days of weeklies and a year of monthlies (the seeds), removing the rest manifest first', () => {
    const d = planRemoteRetention(keys, backups, DEFAULT_OFFSITE_RETENTION, now);
    const removed = new Set(d.reasons.map((r) => r.what.split('/').at(-1)!));
    const kept = ids.filter((id) => !removed.has(id));
    const age = (id: string) =>
      (now.getTime() - new Date(`${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T02:00:00Z`).getTime()) /
      86_400_000;
    // Every day of the last 30 is kept; between 30 and ~90 days one a week; after that one a month.
    expect(ids.filter((id) => age(id) <= 30).every((id) => kept.includes(id))).toBe(true);
    // One a week (plus a month's newest) up to ~90 days: no gap over 7 days, no more than 11.
    const weeklyBand = kept
      .filter((id) => age(id) > 30 && age(id) <= 88)
      .map(age)
      .sort((a, b) => a - b);
    expect(weeklyBand.length).toBeGreaterThanOrEqual(8);
    expect(weeklyBand.length).toBeLessThanOrEqual(11);
    expect(Math.max(...weeklyBand.map((a, i) => a - (weeklyBand[i - 1] ?? 30)))).toBeLessThanOrEqual(7.01);
    expect(kept.filter((id) => age(id) > 100).length).toBeLessThanOrEqual(10);
    expect(kept.length).toBeLessThan(60);
    expect(d.remove.length).toBe(2 * (365 - kept.length));
    const first = d.reasons[0]!.what;
    expect(d.remove.indexOf(`${first}/manifest.json`)).toBeLessThan(d.remove.indexOf(`${first}/dump.pgdump.zst.gpg`));
    expect(d.reasons[0]!.reason).toMatch(/^outside the offsite policy \(30 daily, 13 weekly, 12 monthly/);
  });

  it('takes the tiers, else an old config’s retentionDays, else the default tiers', () => {
    const tiers = { daily: 1, weekly: 0, monthly: 0, yearly: 0, minimum: 1 };
    expect(offsiteRetention({ retention: tiers, retentionDays: 10 })).toBe(tiers);
    expect(offsiteRetention({ retentionDays: 10 })).toBe(10);
    expect(offsiteRetention({})).toBe(DEFAULT_OFFSITE_RETENTION);
    // Flat days still work as before.
    expect(planRemoteRetention(keys, backups, 10, now).reasons).toHaveLength(365 - 9);
  });
});

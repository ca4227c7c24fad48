import { describe, expect, it } from 'vitest';
import { checkRemote, knownRemoteKeys, missingOnRemote, planRemoteRetention, remoteBackups, walNameOf, type LocalObject, type RemoteBackup, type RemoteEntry } from '../../src/lib/offsite.js';

const sha = (c: string) => c.repeat(64);
const dump = 'main/logical/app/20261101T020000Z/dump.pgdump.zst.gpg';
const manifest = 'main/logical/app/20261101T020000Z/manifest.json';
const seg = 'main/wal/000000010000000000000003.zst.gpg';
const rec = 'main/wal/000000010000000000000003.json';

const local: LocalObject[] = [
  { key: manifest, kind: 'logical', bytes: 900, sha256: sha('m'.replace('m', 'a')), marker: true, committedAt: '2026-11-01T02:00:05Z' },
  { key: dump, kind: 'logical', bytes: 1000, sha256: sha('b'), marker: false, committedAt: '2026-11-01T02:00:05Z' },
  { key: rec, kind: 'wal', bytes: 300, sha256: sha('c'), marker: false, committedAt: '2026-11-01T02:00:05Z' },
  { key: seg, kind: 'wal', bytes: 5000, sha256: sha('d'), marker: false, committedAt: '2026-11-01T02:00:05Z' },
];
const remoteOf = (objects: LocalObject[]): Map<string, RemoteEntry> => new Map(objects.map((o) => [o.key, { key: o.key, bytes: o.bytes, recordedSha256: o.sha256 }]));

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
    const report = check(remote, new Map([...remote.values()].map((r) => [r.key, r.recordedSha256!])), [...remote.keys()]);
    expect(report.problems).toEqual([]);
    expect(report.counts).toEqual({ logical: { local: 2, remote: 2 }, base: { local: 0, remote: 0 }, wal: { local: 2, remote: 2 } });
    expect(report.contentChecked).toBe(4);
  });

  it('does not count objects committed while the sync ran as missing (the next sync ships them)', () => {
    const late: LocalObject = { key: 'main/wal/000000010000000000000004.zst.gpg', kind: 'wal', bytes: 10, sha256: sha('e'), marker: false, committedAt: '2026-11-22T05:00:30Z' };
    const remote = remoteOf(local);
    const report = checkRemote({ repository: 'offsite', local: [...local, late], remote, content: new Map(), contentScope: new Set(), syncedAt: '2026-11-22T05:00:00Z' });
    expect(report).toMatchObject({ notShippedYet: 1, problems: [] });
    // On its own (no sync): a WAL file nothing of which is on the remote is not shipped yet...
    const alone = checkRemote({ repository: 'offsite', local: [...local, late], remote, content: new Map(), contentScope: new Set() });
    expect(alone).toMatchObject({ notShippedYet: 1, problems: [] });
    // ...but one whose record is there lacks its data.
    const lateRecord = 'main/wal/000000010000000000000004.json';
    remote.set(lateRecord, { key: lateRecord, bytes: 300, recordedSha256: sha('f') });
    const partial = checkRemote({ repository: 'offsite', local: [...local, late], remote, content: new Map(), contentScope: new Set() });
    expect(partial.problems.map((p) => [p.problem, p.key])).toEqual([['missing', late.key]]);
  });

  it('names a missing, a short and a differing object', () => {
    const remote = remoteOf(local);
    remote.delete(seg);
    remote.set(dump, { key: dump, bytes: 999, recordedSha256: sha('b') });
    remote.set(rec, { key: rec, bytes: 300, recordedSha256: sha('e') });
    const problems = check(remote).problems.map((p) => [p.problem, p.key]);
    // Without its data, the record still belongs to the WAL file; the data is missing.
    expect(problems).toEqual([['short', dump], ['differs', rec], ['missing', seg]]);
  });

  it('holds a manifest to its own recorded sha256, not the local one (verifications are appended locally)', () => {
    const remote = remoteOf(local);
    remote.set(manifest, { key: manifest, bytes: 700, recordedSha256: sha('9') });
    expect(check(remote, new Map([[manifest, sha('9')]]), [manifest]).problems).toEqual([]);
    expect(check(remote, new Map([[manifest, sha('8')]]), [manifest]).problems.map((p) => p.problem)).toEqual(['corrupt']);
  });

  it('finds content that no longer matches its recorded sha256 (a flipped byte)', () => {
    const remote = remoteOf(local);
    const report = check(remote, new Map([[dump, sha('0')]]), [dump]);
    expect(report.problems).toEqual([{ key: dump, problem: 'corrupt', detail: `content sha256 ${sha('0')}, recorded ${sha('b')}` }]);
  });

  it('reports unknown objects and objects without a recorded sha256', () => {
    const remote = remoteOf(local);
    remote.set('main/logical/app/20261102T020000Z/dump.pgdump', { key: 'main/logical/app/20261102T020000Z/dump.pgdump', bytes: 5, recordedSha256: sha('1') });
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
    const keys = [dump, manifest, seg, rec, 'main/wal/000000010000000000000004.zst.gpg', 'main/base/20261101T030000Z/base.tar.zst'];
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
    b.kind === 'base' ? { ...b, wal: { backupId: b.backupId, timeline: 1, startLsn: b.backupId.startsWith('20260101') ? '0/2000028' : '0/9000028' } } : b,
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
    expect(d.reasons.map((r) => r.what)).toEqual(['main/base/20260101T030000Z', 'main/logical/app/20260101T020000Z', '000000010000000000000002']);
  });

  it('removes no WAL when no base backup anchors it, and nothing within the window', () => {
    const noBase = backups.filter((b) => b.kind === 'logical');
    expect(planRemoteRetention(keys, noBase, 90, now).remove.some((k) => k.includes('/wal/'))).toBe(false);
    expect(planRemoteRetention(keys, backups, 3650, now).remove).toEqual([]);
  });
});

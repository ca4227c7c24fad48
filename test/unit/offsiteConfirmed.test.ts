// The record of what the remote check confirmed offsite, which local retention asks before it
// deletes: a group counts only when every one of its local objects is on the remote with the same
// size and sha256; earlier confirmations survive, groups gone locally are dropped (within the check's scope).
import { describe, expect, it } from 'vitest';
import { type LocalObject, type RemoteEntry } from '../../src/lib/offsite.js';
import {
  DEFAULT_OFFSITE_RETENTION,
  offsiteRetention,
  planRemoteRetention,
  remoteBackups,
  type RemoteBackup,
} from '../../src/lib/offsiteRetention.js';
import {
  awaitingConfirmation,
  confirmedGroups,
  mergeConfirmations,
  recordAfterCheck,
  type OffsiteConfirmations,
} from '../../src/lib/offsiteConfirmed.js';
import { applyRetention, DEFAULT_RETENTION } from '../../src/lib/retention.js';
import { backupIdTime } from '../../src/lib/ids.js';
import { formatLsn, segmentName } from '../../src/lib/wal.js';

const obj = (key: string, bytes = 10, sha256 = 'a', marker = false): LocalObject => ({
  key,
  kind: key.split('/')[1] as LocalObject['kind'],
  bytes,
  sha256,
  marker,
  committedAt: '2026-11-22T00:00:00Z',
});
const remote = (entries: [string, number, string?][]): Map<string, RemoteEntry> =>
  new Map(entries.map(([key, bytes, recordedSha256]) => [key, { key, bytes, recordedSha256 }]));
const WAL = '000000010000000000000003';

describe('offsite confirmations', () => {
  const local = [
    obj('main/base/B1/base.tar.zst'),
    obj('main/base/B1/manifest.json', 5, 'm', true),
    obj('main/base/B2/base.tar.zst'),
    obj('main/base/B2/manifest.json', 5, 'm', true),
    obj(`main/wal/${WAL}.zst`),
    obj(`main/wal/${WAL}.json`, 3, 'r'),
    obj('main/logical/app/L1/dump.pgdump'),
    obj('main/logical/app/L1/manifest.json', 5, 'm', true),
  ];

  it('confirms a group only when every object is there with its size and sha256', () => {
    const r = remote([
      ['main/base/B1/base.tar.zst', 10, 'a'],
      ['main/base/B1/manifest.json', 7, 'other'], // markers grow locally: presence counts
      ['main/base/B2/base.tar.zst', 9, 'a'], // short
      ['main/base/B2/manifest.json', 5, 'm'],
      [`main/wal/${WAL}.zst`, 10, 'a'],
      [`main/wal/${WAL}.json`, 3, 'r'],
      ['main/logical/app/L1/dump.pgdump', 10, 'b'], // differs
      ['main/logical/app/L1/manifest.json', 5],
    ]);
    expect([...confirmedGroups(local, r)].sort()).toEqual(['main/base/B1', `main/wal/${WAL}`]);
    expect(confirmedGroups(local, remote([['main/base/B1/base.tar.zst', 10, 'a']])).has('main/base/B1')).toBe(false);
  });

  it('keeps earlier confirmations with their time, drops groups gone locally, and a WAL-only check leaves backups alone', () => {
    const t1 = new Date('2026-11-22T05:00:00Z');
    const t2 = new Date('2026-11-23T05:00:00Z');
    const first = mergeConfirmations(undefined, {
      repository: 's3',
      confirmed: ['main/base/B1', 'main/base/B0'],
      localGroups: ['main/base/B1', 'main/base/B0'],
      now: t1,
    });
    const walOnly = mergeConfirmations(first, {
      repository: 's3',
      confirmed: [`main/wal/${WAL}`],
      localGroups: [`main/wal/${WAL}`],
      walOnly: true,
      now: t2,
    });
    expect(walOnly.confirmed).toEqual({
      'main/base/B1': t1.toISOString(),
      'main/base/B0': t1.toISOString(),
      [`main/wal/${WAL}`]: t2.toISOString(),
    });
    const full = mergeConfirmations(walOnly, {
      repository: 's3',
      confirmed: ['main/base/B1'],
      localGroups: ['main/base/B1', `main/wal/${WAL}`],
      now: t2,
    });
    expect(full.confirmed).toEqual({ 'main/base/B1': t1.toISOString(), [`main/wal/${WAL}`]: t2.toISOString() });
    expect(full.checkedAt).toBe(t2.toISOString());
  });

  it('names every configured repository that has not confirmed a group', () => {
    const records = new Map([
      ['s3', { repository: 's3', confirmed: { 'main/base/B1': 'x' } }],
      ['far', undefined],
    ]);
    expect(awaitingConfirmation('main/base/B1', ['s3', 'far'], records)).toEqual(['far']);
    expect(awaitingConfirmation('main/base/B1', ['s3'], records)).toEqual([]);
    expect(awaitingConfirmation('main/base/B2', ['s3'], records)).toEqual(['s3']);
    expect(awaitingConfirmation('main/base/B2', [], records)).toEqual([]);
  });
});

// The gate as offsiteSync's check leaves it, against the remote's own policy: a group the remote
// policy drops (removed there, or never uploaded) must not make local retention wait forever.
describe('the offsite gate and the remote policy', () => {
  const now = new Date('2026-11-20T12:00:00Z');
  /** What checkOffsite sees: every committed local object, and those the remote's policy keeps. */
  const view = (keys: string[], backups: RemoteBackup[], policy: ReturnType<typeof offsiteRetention>) => {
    const inventory = keys.map((k) => obj(k, 10, 'a', k.endsWith('/manifest.json')));
    const dropped = new Set(planRemoteRetention(keys, backups, policy, now).remove);
    return { inventory, expected: inventory.filter((o) => !dropped.has(o.key)), dropped };
  };
  const held = (objects: readonly LocalObject[]) => remote(objects.map((o) => [o.key, o.bytes, o.sha256]));

  // Daily scheduled backups at 02:00, and an ad-hoc one at 01:00 on the 5th: the remote's tiers keep
  // the newest of each day, so they drop it; the local policy deletes it too.
  const ids = [
    ...Array.from({ length: 20 }, (_, d) => `202611${String(d + 1).padStart(2, '0')}T020000Z`),
    '20261105T010000Z',
  ];
  const adhoc = 'main/logical/app/20261105T010000Z';
  const keys = ids.flatMap((id) => [`main/logical/app/${id}/manifest.json`, `main/logical/app/${id}/dump.pgdump`]);
  const gate = (record: OffsiteConfirmations) => (group: string) =>
    awaitingConfirmation(group, ['r'], new Map([['r', record]]));

  it('an ad-hoc backup the remote tiers drop: its earlier confirmation is kept, and one never uploaded is not held by policy', () => {
    const { inventory, expected, dropped } = view(keys, remoteBackups(keys), DEFAULT_OFFSITE_RETENTION);
    expect(dropped.has(`${adhoc}/dump.pgdump`)).toBe(true);
    const local = applyRetention(
      ids.map((id) => ({ backupId: id, time: backupIdTime(id)!, verified: false })),
      DEFAULT_RETENTION,
    );
    expect(local.delete.map((d) => d.backupId)).toContain('20261105T010000Z');
    // Confirmed by an earlier check, then removed by the remote's retention.
    const earlier = { repository: 'r', confirmed: { [adhoc]: '2026-11-05T03:00:00Z' } };
    const after = recordAfterCheck(earlier, { repository: 'r', inventory, expected, remote: held(expected), now });
    expect(after.confirmed[adhoc]).toBe('2026-11-05T03:00:00Z');
    expect(gate(after)(adhoc)).toEqual([]);
    // Never uploaded (the remote policy excluded it before the first sync): not held by policy.
    const fresh = recordAfterCheck(undefined, { repository: 'r', inventory, expected, remote: held(expected), now });
    expect(fresh.confirmed[adhoc]).toBeUndefined();
    expect(fresh.notHeld).toEqual({ [adhoc]: now.toISOString() });
    expect(gate(fresh)(adhoc)).toEqual([]);
    // What the remote keeps and does not hold still waits; what it holds is confirmed.
    const partial = recordAfterCheck(undefined, {
      repository: 'r',
      inventory,
      expected,
      remote: held(expected.filter((o) => !o.key.includes('20261120'))),
      now,
    });
    expect(gate(partial)('main/logical/app/20261120T020000Z')).toEqual(['r']);
    expect(gate(partial)('main/logical/app/20261119T020000Z')).toEqual([]);
  });

  it('a group not held by policy is re-decided at each check, and dropped once gone locally', () => {
    const { inventory, expected } = view(keys, remoteBackups(keys), DEFAULT_OFFSITE_RETENTION);
    const first = recordAfterCheck(undefined, { repository: 'r', inventory, expected, remote: held(expected), now });
    const later = new Date(now.getTime() + 3_600_000);
    // The next check: the operator widened the remote policy (it wants the ad-hoc backup again).
    const second = recordAfterCheck(first, {
      repository: 'r',
      inventory,
      expected: inventory,
      remote: held(expected),
      now: later,
    });
    expect(second.notHeld).toBeUndefined();
    expect(gate(second)(adhoc)).toEqual(['r']);
    // Kept its first time while still not wanted; gone locally: gone from the record.
    const same = recordAfterCheck(first, { repository: 'r', inventory, expected, remote: held(expected), now: later });
    expect(same.notHeld).toEqual({ [adhoc]: now.toISOString() });
    const gone = recordAfterCheck(first, {
      repository: 'r',
      inventory: inventory.filter((o) => !o.key.startsWith(adhoc)),
      expected,
      remote: held(expected),
      now: later,
    });
    expect(gone.notHeld).toBeUndefined();
    // A WAL-only check leaves the backups' marks alone.
    const walOnly = recordAfterCheck(first, {
      repository: 'r',
      inventory: [],
      expected: [],
      remote: new Map(),
      walOnly: true,
      now: later,
    });
    expect(walOnly.notHeld).toEqual(first.notHeld);
  });

  it("legacy retentionDays: 7: older base backups and the WAL below the remote's oldest base backup do not wait; newer WAL does until confirmed", () => {
    const seg = (n: number) => segmentName(1, BigInt(n));
    const lsn = (n: number) => formatLsn(BigInt(n) * 16_777_216n);
    // Weekly base backups on the 1st, 8th and 15th (segments 10, 40, 70), WAL from 10 to 90.
    const bases = [
      ['20261101T030000Z', 10],
      ['20261108T030000Z', 40],
      ['20261115T030000Z', 70],
    ] as const;
    const baseKeys = bases.flatMap(([id]) => [`main/base/${id}/manifest.json`, `main/base/${id}/base.tar.zst`]);
    const walKeys = Array.from({ length: 81 }, (_, i) => seg(10 + i)).flatMap((n) => [
      `main/wal/${n}.zst`,
      `main/wal/${n}.json`,
    ]);
    const all = [...baseKeys, ...walKeys];
    const backups = remoteBackups(all).map((b) => {
      const [, start] = bases.find(([id]) => id === b.backupId)!;
      return { ...b, wal: { backupId: b.backupId, timeline: 1, startLsn: lsn(start) } };
    });
    const { inventory, expected } = view(all, backups, offsiteRetention({ retentionDays: 7 }));
    // The remote holds what its policy keeps except the newest WAL, not shipped yet.
    const record = recordAfterCheck(undefined, {
      repository: 'r',
      inventory,
      expected,
      remote: held(expected.filter((o) => !o.key.includes(seg(90)))),
      now,
    });
    const g = gate(record);
    expect(g('main/base/20261101T030000Z')).toEqual([]);
    expect(g('main/base/20261108T030000Z')).toEqual([]);
    expect(g(`main/wal/${seg(50)}`)).toEqual([]); // between the local weekly backups, below the remote's oldest
    expect(g(`main/wal/${seg(69)}`)).toEqual([]);
    expect(g(`main/wal/${seg(70)}`)).toEqual([]); // held and confirmed
    expect(g(`main/wal/${seg(90)}`)).toEqual(['r']); // the remote wants it and has not confirmed it
    expect(record.notHeld?.[`main/wal/${seg(70)}`]).toBeUndefined();
  });
});

// The record of what the remote check confirmed offsite, which local retention asks before it
// deletes: a group counts only when every one of its local objects is on the remote with the same
// size and sha256; earlier confirmations survive, groups gone locally are dropped (within the check's scope).
import { describe, expect, it } from 'vitest';
import type { LocalObject, RemoteEntry } from '../../src/lib/offsite.js';
import { awaitingConfirmation, confirmedGroups, mergeConfirmations } from '../../src/lib/offsiteConfirmed.js';

const obj = (key: string, bytes = 10, sha256 = 'a', marker = false): LocalObject => ({ key, kind: key.split('/')[1] as LocalObject['kind'], bytes, sha256, marker, committedAt: '2026-11-22T00:00:00Z' });
const remote = (entries: [string, number, string?][]): Map<string, RemoteEntry> => new Map(entries.map(([key, bytes, recordedSha256]) => [key, { key, bytes, recordedSha256 }]));
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
    const first = mergeConfirmations(undefined, { repository: 's3', confirmed: ['main/base/B1', 'main/base/B0'], localGroups: ['main/base/B1', 'main/base/B0'], now: t1 });
    const walOnly = mergeConfirmations(first, { repository: 's3', confirmed: [`main/wal/${WAL}`], localGroups: [`main/wal/${WAL}`], walOnly: true, now: t2 });
    expect(walOnly.confirmed).toEqual({ 'main/base/B1': t1.toISOString(), 'main/base/B0': t1.toISOString(), [`main/wal/${WAL}`]: t2.toISOString() });
    const full = mergeConfirmations(walOnly, { repository: 's3', confirmed: ['main/base/B1'], localGroups: ['main/base/B1', `main/wal/${WAL}`], now: t2 });
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

// What plan reads from pg_waldump to prove that replay reaches a target: commit and abort times
// (two-phase ones too) to the microsecond, the last record's LSN; and when a time or LSN target is
// reached — a commit strictly after the time (recovery_target_inclusive), a record at or past the LSN.
import { describe, expect, it } from 'vitest';
import { planRecoveryPath, type ArchivedWal, type BackupSummary } from '../../src/lib/recoveryPath.js';
import { parseWaldump, reachesTarget, timeMicros } from '../../src/lib/walContent.js';
import { headerMatchesSegment } from '../../src/lib/wal.js';

// Real pg_waldump 15 output (TZ=UTC), trimmed.
const DUMP = `rmgr: XLOG        len (rec/tot):    114/   114, tx:          0, lsn: 0/02000028, prev 0/01516890, desc: CHECKPOINT_SHUTDOWN redo 0/2000028; tli 1; prev tli 1; fpw true; xid 0:728; oid 16387
rmgr: Heap        len (rec/tot):     59/    59, tx:        728, lsn: 0/020000A0, prev 0/02000028, desc: INSERT+INIT off 1 flags 0x00, blkref #0: rel 1663/5/16384 blk 0
rmgr: Transaction len (rec/tot):     34/    34, tx:        728, lsn: 0/02000160, prev 0/020000A0, desc: COMMIT 2026-12-01 18:19:55.890925 UTC
rmgr: Transaction len (rec/tot):     34/    34, tx:        730, lsn: 0/020001F0, prev 0/020001B0, desc: ABORT 2026-12-01 18:19:55.891701 UTC
rmgr: Transaction len (rec/tot):     50/    50, tx:          0, lsn: 0/02000200, prev 0/020001F0, desc: COMMIT_PREPARED 731: 2026-12-01 18:19:56.000001 UTC
rmgr: XLOG        len (rec/tot):     98/    98, tx:          0, lsn: 0/02000218, prev 0/02000200, desc: RESTORE_POINT rp1
rmgr: XLOG        len (rec/tot):    114/   114, tx:          0, lsn: 0/02000280, prev 0/02000218, desc: CHECKPOINT_SHUTDOWN redo 0/2000280; tli 1
pg_waldump: error: error in WAL record at 0/2000280: invalid record length at 0/20002F8: wanted 24, got 0`;

describe('parseWaldump', () => {
  it('reads commit, abort and two-phase commit times to the microsecond, and the last record', () => {
    const c = parseWaldump(DUMP);
    expect(c.lastRecord).toBe(0x2000280n);
    expect(c.ends.map((e) => [e.lsn, e.micros])).toEqual([
      [0x2000160n, timeMicros('2026-12-01 18:19:55.890925+00')],
      [0x20001f0n, timeMicros('2026-12-01T18:19:55.891701Z')],
      [0x2000200n, timeMicros('2026-12-01 18:19:56.000001+00')],
    ]);
    expect(parseWaldump('pg_waldump: error: could not find a valid record after 0/3000000')).toEqual({ ends: [] });
  });

  it('keeps microseconds and zones apart', () => {
    expect(timeMicros('2026-12-01 18:19:55.890925+00') - timeMicros('2026-12-01 18:19:55.890924+00')).toBe(1n);
    expect(timeMicros('2026-12-01 20:19:55.5+02')).toBe(timeMicros('2026-12-01T18:19:55.500000Z'));
    expect(timeMicros('2026-12-01T10:19:55-0800')).toBe(timeMicros('2026-12-01 18:19:55+00'));
    expect(() => timeMicros('yesterday')).toThrow(/not a time/);
  });
});

describe('reachesTarget', () => {
  const c = parseWaldump(DUMP);
  it('needs a commit or abort strictly after a time target', () => {
    expect(reachesTarget({ time: '2026-12-01 18:19:55.891700+00' }, c)).toBe(true);
    expect(reachesTarget({ time: '2026-12-01 18:19:56.000000+00' }, c)).toBe(true); // the two-phase commit
    expect(reachesTarget({ time: '2026-12-01 18:19:56.000001+00' }, c)).toBe(false); // equal is not after
    expect(reachesTarget({ time: '2026-12-01 18:20:00+00' }, { ends: [] })).toBe(false);
  });
  it('needs a record that starts at or past an LSN target', () => {
    expect(reachesTarget({ lsn: '0/2000280' }, c)).toBe(true);
    expect(reachesTarget({ lsn: '0/2000281' }, c)).toBe(false);
    expect(reachesTarget({ lsn: '0/1' }, { ends: [] })).toBe(false);
  });
});

describe('planRecoveryPath, openEnded', () => {
  const seg = (s: string) => `00000001000000000000000${s}`;
  const backup: BackupSummary = {
    backupId: '20261122T020000Z',
    timeline: 1,
    startLsn: '0/2000028',
    stopLsn: '0/2000100',
    finishedAt: '2026-11-22T02:00:05Z',
  };
  const wal: ArchivedWal[] = [
    { name: seg('2'), archivedAt: '2026-11-22T02:00:06Z' },
    { name: seg('3'), archivedAt: '2026-11-22T08:00:00Z' },
  ];
  const now = new Date('2026-11-24T00:00:00Z');
  it('leaves a time or LSN past the end of the archive to the content proof instead of refusing it', () => {
    for (const target of [{ time: '2026-11-23 10:00:00+00' }, { lsn: '0/9000000' }]) {
      expect(() => planRecoveryPath({ target, backups: [backup], wal, histories: new Map(), now })).toThrow();
      const p = planRecoveryPath({ target, backups: [backup], wal, histories: new Map(), now, openEnded: true });
      expect(p.walFiles).toEqual([seg('2'), seg('3')]);
      expect(p.lastSegment).toBe(seg('3'));
    }
  });
  it('still refuses a gap', () => {
    const gap = [...wal, { name: seg('5'), archivedAt: '2026-11-23T08:00:00Z' }];
    expect(() =>
      planRecoveryPath({
        target: { lsn: '0/9000000' },
        backups: [backup],
        wal: gap,
        histories: new Map(),
        now,
        openEnded: true,
      }),
    ).toThrow(/000000010000000000000004 is missing/);
  });
});

describe('headerMatchesSegment', () => {
  // First 16 bytes of real pg_wal files (PostgreSQL 15): segment 2 as written, and a file named
  // segment 3 that is segment 1 recycled (its pages still say 0/1000000).
  const bytes = (hex: string) => Uint8Array.from(hex.split(' ').map((h) => parseInt(h, 16)));
  const SEG2 = bytes('10 d1 06 00 01 00 00 00 00 00 00 02 00 00 00 00');
  const RECYCLED = bytes('10 d1 02 00 01 00 00 00 00 00 00 01 00 00 00 00');
  it('accepts a segment whose first page names its timeline and start, and nothing else', () => {
    expect(headerMatchesSegment(SEG2, '000000010000000000000002')).toBe(true);
    expect(headerMatchesSegment(RECYCLED, '000000010000000000000003')).toBe(false);
    expect(headerMatchesSegment(new Uint8Array(16), '000000010000000000000003')).toBe(false); // preallocated
    expect(headerMatchesSegment(SEG2, '000000020000000000000002')).toBe(false); // another timeline
    expect(headerMatchesSegment(SEG2.subarray(0, 8), '000000010000000000000002')).toBe(false);
    expect(headerMatchesSegment(SEG2, '00000001.history')).toBe(false);
  });
});

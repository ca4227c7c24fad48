import { describe, expect, it } from 'vitest';
import type { ActivityStatus, LiveStatus } from '../../src/cli/client.js';
import { commandPath, oneLine, usageMessage, UsageError, UserError } from '../../src/cli/errors.js';
import {
  approvalOf,
  formatDuration,
  formatElapsed,
  formatLocalTime,
  formatRate,
  offsiteReportLines,
  runTable,
  statusWord,
} from '../../src/cli/format.js';
import { formatBytes } from '../../src/lib/diskSpace.js';
import {
  childLabel,
  mainActivity,
  nextRate,
  plainProgressLine,
  progressBar,
  progressKey,
  progressView,
  rateSample,
  readHeartbeat,
  ttyProgressLine,
  type ProgressView,
  withChild,
  type RateMeter,
} from '../../src/cli/progressView.js';
import { outcomeOf, statusReport } from '../../src/cli/runReport.js';
import { Command } from 'commander';

const MiB = 1024 * 1024;
const t0 = Date.parse('2026-11-22T14:00:00Z');

function activity(over: Partial<ActivityStatus> = {}): ActivityStatus {
  return { activityId: '1', type: 'createLogicalBackup', state: 'started', attempt: 1, ...over };
}

function live(over: Partial<LiveStatus> = {}): LiveStatus {
  return { status: 'RUNNING', workflowType: 'fullBackup', startTime: new Date(t0), activities: [], ...over };
}

describe('sizes, durations, times', () => {
  it('formats bytes, rates and durations for people', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 1024 * MiB)).toBe('3.0 GiB');
    expect(formatRate(12.6 * MiB)).toBe('12.6 MiB/s');
    expect(formatRate(0.4)).toBe('0 B/s');
    expect(formatDuration(4.25)).toBe('4.3s');
    expect(formatDuration(65)).toBe('1m05s');
    expect(formatDuration(3 * 3600 + 7 * 60)).toBe('3h07m');
    expect(formatDuration(59.96)).toBe('1m00s');
    expect(formatDuration(119.6)).toBe('2m00s');
    expect(formatDuration(3599.7)).toBe('1h00m');
    expect(formatDuration(2 * 3600 - 10)).toBe('1h59m');
    expect(formatElapsed(7.9)).toBe('7s');
    expect(formatElapsed(-1)).toBe('0s');
    expect(formatElapsed(125)).toBe('2m05s');
  });

  it('shows times in the local zone', () => {
    expect(formatLocalTime(new Date(2026, 10, 2, 4, 5, 6))).toBe('2026-11-02 04:05:06');
  });

  it('spells statuses as --status does', () => {
    expect(statusWord('TIMED_OUT')).toBe('timed-out');
    expect(statusWord('RUNNING')).toBe('running');
  });
});

describe('heartbeats', () => {
  it("reads each activity's fields", () => {
    expect(readHeartbeat({ phase: 'dump', storedBytes: 10 })).toEqual({
      phase: 'dump',
      bytes: 10,
      bytesLabel: 'stored',
    });
    expect(readHeartbeat({ phase: 'check', repository: 's3', objects: 4, bytesRead: 99 })).toEqual({
      phase: 'check',
      bytes: 99,
      bytesLabel: 'read',
      count: { done: 4, total: NaN, unit: 'objects' },
    });
    expect(readHeartbeat({ phase: 'upload', objects: 3, of: 12, bytes: 5 })).toEqual({
      phase: 'upload',
      bytes: 5,
      count: { done: 3, total: 12, unit: 'objects' },
    });
    expect(readHeartbeat({ phase: 'stage-wal', walFiles: 2, of: 8 })).toEqual({
      phase: 'stage-wal',
      count: { done: 2, total: 8, unit: 'WAL files' },
    });
    expect(readHeartbeat({ phase: 'replay', lsn: '0/3000060' })).toEqual({ phase: 'replay', lsn: '0/3000060' });
    expect(readHeartbeat({ phase: 'stage-base', bytes: 5, totalBytes: 20 })).toEqual({
      phase: 'stage-base',
      bytes: 5,
      totalBytes: 20,
    });
    expect(readHeartbeat(undefined)).toEqual({});
    expect(readHeartbeat({ storedBytes: 'many' })).toEqual({});
  });

  it('takes the rate from successive heartbeats of one attempt and phase', () => {
    let m: RateMeter = {};
    m = nextRate(m, { key: 'a', bytes: 0, at: 1000 });
    expect(m.rate).toBeUndefined();
    m = nextRate(m, { key: 'a', bytes: 10 * MiB, at: 3000 });
    expect(m.rate).toBe(5 * MiB);
    // The same heartbeat read again changes nothing.
    expect(nextRate(m, { key: 'a', bytes: 10 * MiB, at: 3000 })).toBe(m);
    m = nextRate(m, { key: 'a', bytes: 16 * MiB, at: 6000 });
    expect(m.rate).toBe(2 * MiB);
    // Another phase or attempt, or a counter that went back, starts over.
    expect(nextRate(m, { key: 'b', bytes: 20 * MiB, at: 7000 }).rate).toBeUndefined();
    expect(nextRate(m, { key: 'a', bytes: MiB, at: 7000 }).rate).toBeUndefined();
    expect(nextRate(m, undefined)).toEqual({});
  });

  it('samples the activity with a byte counter, timed by its heartbeat', () => {
    const dumping = activity({
      activityId: '7',
      attempt: 2,
      heartbeat: { phase: 'dump', storedBytes: 42 },
      heartbeatAt: new Date(t0 + 5000),
    });
    const other = activity({ activityId: '8', type: 'notifyApproval' });
    expect(mainActivity({ activities: [other, dumping] })).toBe(dumping);
    expect(rateSample(dumping, 0)).toEqual({ key: '7#2:dump', bytes: 42, at: t0 + 5000 });
    expect(rateSample(other, 0)).toBeUndefined();
    expect(rateSample(undefined, 0)).toBeUndefined();
  });
});

describe('the progress line', () => {
  const dumping = live({
    progress: { step: 'dump', since: new Date(t0).toISOString(), done: ['preflight'] },
    activities: [activity({ heartbeat: { phase: 'dump', storedBytes: 300 * MiB } })],
  });

  it('shows step, bytes, rate and elapsed; no phase when it repeats the step', () => {
    const v = progressView(dumping, { rate: 12 * MiB }, t0 + 65_000);
    expect(v).toMatchObject({ step: 'dump', bytes: 300 * MiB, bytesLabel: 'stored', rate: 12 * MiB, elapsed: 65 });
    expect(v.phase).toBeUndefined();
    expect(v.fraction).toBeUndefined();
    expect(plainProgressLine(v)).toBe('dump: 300.0 MiB stored, 12.0 MiB/s (1m05s)');
    expect(ttyProgressLine(v, 80)).toBe('dump  300.0 MiB stored  12.0 MiB/s  1m05s');
    expect(progressKey(v)).toBe('dump: 300.0 MiB stored');
  });

  it('shows a bar and a percentage only where the total is known', () => {
    const uploading = live({
      progress: { step: 'upload', since: new Date(t0).toISOString(), done: ['plan'], detail: 's3' },
      activities: [activity({ heartbeat: { phase: 'upload', objects: 3, of: 12, bytes: 5 * MiB } })],
    });
    const v = progressView(uploading, {}, t0 + 9_000);
    expect(v.fraction).toBe(0.25);
    expect(ttyProgressLine(v, 100)).toBe('upload  [#####---------------]  25%  3/12 objects  5.0 MiB  9s');
    expect(plainProgressLine(v)).toBe('upload: 3/12 objects (25%), 5.0 MiB (9s)');
    const staging = progressView(
      live({
        progress: { step: 'stage', since: '', done: [] },
        activities: [activity({ heartbeat: { phase: 'stage-wal', walFiles: 8, of: 8 } })],
      }),
      {},
      t0,
    );
    expect(ttyProgressLine(staging, 100)).toBe('stage/stage-wal  [####################] 100%  8/8 WAL files  0s');
    const restoring = progressView(
      live({
        progress: { step: 'restore', since: '', done: [] },
        activities: [activity({ heartbeat: { phase: 'restore', bytes: 3 * MiB, totalBytes: 12 * MiB } })],
      }),
      {},
      t0,
    );
    expect(ttyProgressLine(restoring, 100)).toBe('restore  [#####---------------]  25%  3.0 MiB of 12.0 MiB  0s');
    expect(plainProgressLine(restoring)).toBe('restore: 3.0 MiB of 12.0 MiB (25%) (0s)');
    expect(progressBar(0.5, 4)).toBe('[##--]');
    expect(progressBar(2, 4)).toBe('[####]');
  });

  it('fits the terminal, and shows the step detail when there is no heartbeat', () => {
    const approving = live({
      progress: { step: 'approve', since: '', done: ['plan', 'stage'], detail: 'x'.repeat(200) },
    });
    const line = ttyProgressLine(progressView(approving, {}, t0 + 3000), 60);
    expect(line.length).toBeLessThanOrEqual(59);
    expect(line).toMatch(/^approve: x+… {2}3s$/);
    expect(ttyProgressLine(progressView(approving, {}, t0), 5).length).toBeLessThanOrEqual(20);
  });

  it('says the step is unknown when no worker answers, and a closed run by its status', () => {
    expect(progressView(live({ queryUnanswered: true }), {}, t0).step).toBe('unknown step');
    expect(progressView(live({ status: 'COMPLETED' }), {}, t0).step).toBe('completed');
  });

  it('prints plain lines only when what the run does changes', () => {
    const a: ProgressView = { step: 'dump', bytes: MiB, elapsed: 3 };
    expect(progressKey(a)).toBe(progressKey({ ...a, elapsed: 9, rate: 5 }));
    expect(progressKey(a)).not.toBe(progressKey({ ...a, bytes: 2 * MiB }));
    expect(plainProgressLine(a)).not.toMatch(/\x1b/);
  });
});

describe('list and status', () => {
  it('lists runs in aligned columns; running ones show their time so far', () => {
    const start = new Date(2026, 10, 22, 2, 0, 0);
    const lines = runTable(
      [
        { workflowId: 'pgwarden/main/app/full/20261122T020000Z', kind: 'full', status: 'running', startTime: start },
        {
          workflowId: 'pgwarden/main/base/x',
          kind: 'base',
          status: 'completed',
          startTime: start,
          closeTime: new Date(start.getTime() + 3_725_000),
        },
      ],
      start.getTime() + 65_000,
    );
    expect(lines).toEqual([
      'WORKFLOW ID                              KIND  STATUS     STARTED              DURATION',
      'pgwarden/main/app/full/20261122T020000Z  full  running    2026-11-22 02:00:00  1m05s',
      'pgwarden/main/base/x                     base  completed  2026-11-22 02:00:00  1h02m',
    ]);
  });

  it('splits an approval detail into what would be done and the commands', () => {
    const id = 'pgwarden/main/app/restore/20261122T020000Z';
    const detail = `restore main/app from backup 20261122T020000Z; the live database is kept as app_pre_restore_x. Approve: pgwarden approve ${id} --approver NAME --reason TEXT`;
    expect(approvalOf(detail, id)).toEqual({
      what: 'restore main/app from backup 20261122T020000Z; the live database is kept as app_pre_restore_x.',
      approve: `pgwarden approve ${id} --approver NAME --reason TEXT`,
      reject: `pgwarden reject ${id} --approver NAME --reason TEXT`,
    });
    expect(approvalOf(undefined, id).what).toBeUndefined();
  });

  it('reports a run at its approval step with what would be done', () => {
    const id = 'pgwarden/main/pitr/20261122T143500Z';
    const since = new Date(t0 + 60_000).toISOString();
    const r = statusReport(
      id,
      live({
        workflowType: 'pointInTimeRecovery',
        memo: { cluster: 'main', kind: 'pitr' },
        progress: {
          step: 'approve',
          since,
          done: ['plan', 'stage'],
          detail: `stop main, keep /d as /d.aside, recover base backup B to latest. Approve: pgwarden approve ${id} --approver NAME --reason TEXT`,
        },
      }),
      t0 + 120_000,
      { approvalDeadline: new Date(t0 + 60_000 + 24 * 3600_000) },
    );
    expect(r.lines[0]).toBe(`${id}  pointInTimeRecovery (pitr), cluster main`);
    expect(r.lines).toContain(
      `  waiting   for approval until ${formatLocalTime(new Date(t0 + 60_000 + 24 * 3600_000))} (23h59m left; then it ends, nothing done); nothing live has been touched yet`,
    );
    expect(r.lines).toContain('  done      plan, stage');
    expect(r.lines).toContain('  would     stop main, keep /d as /d.aside, recover base backup B to latest.');
    expect(r.lines).toContain(`  approve   pgwarden approve ${id} --approver NAME --reason TEXT`);
    expect(r.lines.find((l) => l.startsWith('  step'))).toMatch(/^ {2}step {6}approve for 1m00s \(since /);
    expect(r.json).toMatchObject({
      kind: 'pitr',
      status: 'running',
      approval: { approve: `pgwarden approve ${id} --approver NAME --reason TEXT` },
    });
  });

  it("reports the running activity's heartbeat with its average rate, and an unknown step", () => {
    const r = statusReport(
      'w',
      live({
        queryUnanswered: true,
        taskQueue: 'pgwarden',
        activities: [
          activity({
            heartbeat: { phase: 'dump', storedBytes: 40 * MiB },
            startedAt: new Date(t0),
            heartbeatAt: new Date(t0 + 10_000),
          }),
        ],
      }),
      t0 + 12_000,
    );
    expect(r.lines).toContain('  step      unknown (no worker answered the progress query within 3s)');
    expect(r.lines).toContain(
      '  activity  createLogicalBackup: dump, 40.0 MiB stored, 4.0 MiB/s average, heartbeat 2s ago',
    );
    expect(r.lines).toContain('  hint      is a worker running on task queue "pgwarden"?');
  });

  it('reports a failed run with its failure', () => {
    const r = statusReport(
      'w',
      live({
        status: 'FAILED',
        closeTime: new Date(t0 + 5000),
        progress: { step: 'dump', since: '', done: ['preflight'] },
      }),
      t0 + 9000,
      { failure: 'pg_dump failed' },
    );
    expect(r.lines[1]).toMatch(/^ {2}status {4}failed after 5\.0s \(started .*, closed .*\)$/);
    expect(r.lines).toContain('  outcome   failed: pg_dump failed');
    expect(r.lines).toContain('  steps     preflight → dump');
    expect(r.exitCode).toBe(4);
    expect(r.json).toMatchObject({ status: 'failed', outcome: 'failed', failure: 'pg_dump failed' });
  });

  it('reports a rejected restore as rejected, with who and why, and never how to approve it', () => {
    const id = 'pgwarden/main/app/restore/20261122T020000Z';
    const decision = {
      approved: false,
      approver: 'bob',
      reason: 'wrong backup',
      at: new Date(t0 + 3000).toISOString(),
    };
    const r = statusReport(
      id,
      live({
        status: 'COMPLETED',
        workflowType: 'restoreDatabase',
        closeTime: new Date(t0 + 4000),
        progress: {
          step: 'approve',
          since: '',
          done: ['plan'],
          detail: `restore main/app from backup B; the live database is kept as x. Approve: pgwarden approve ${id} --approver NAME --reason TEXT`,
        },
      }),
      t0 + 9000,
      { result: { outcome: 'rejected', cluster: 'main', database: 'app', backupId: 'B', decision } },
    );
    expect(r.lines).toContain(
      `  outcome   rejected by bob at ${formatLocalTime(new Date(t0 + 3000))}: wrong backup; nothing was done`,
    );
    expect(r.lines.join('\n')).not.toMatch(/approve |would|waiting/);
    expect(r.exitCode).toBe(3);
    expect(r.json).toMatchObject({ status: 'completed', outcome: 'rejected', decision: { approver: 'bob' } });
  });

  it('names each way a run ends, with its exit code', () => {
    const cases: [string, unknown, string | undefined, string, number][] = [
      [
        'COMPLETED',
        { outcome: 'timed-out' },
        undefined,
        'timed out waiting for approval (nobody approved or rejected in time); nothing was done',
        3,
      ],
      [
        'COMPLETED',
        {
          outcome: 'restored',
          cluster: 'main',
          database: 'app',
          backupId: 'B',
          previousDatabase: 'app_pre',
          decision: { approver: 'al', reason: 'INC-1' },
        },
        undefined,
        'restored main/app from B; the previous database is kept as app_pre, approved by al: INC-1',
        0,
      ],
      [
        'COMPLETED',
        {
          outcome: 'rehearsed',
          cluster: 'main',
          target: 'latest',
          backupId: 'B',
          recovery: { timeline: 2, reachedLsn: '0/3000060' },
        },
        undefined,
        'rehearsed main to latest from base backup B, timeline 2, at 0/3000060',
        0,
      ],
      [
        'COMPLETED',
        { ok: true, cluster: 'main', database: 'app', backupId: 'B', tables: 5, rows: 40 },
        undefined,
        'verified main/app B: 5 tables, 40 rows restored and compared',
        0,
      ],
      ['COMPLETED', { cluster: 'main', backups: [] }, undefined, 'completed', 0],
      ['TERMINATED', undefined, 'operator stopped it', 'terminated: operator stopped it', 4],
      ['CANCELLED', undefined, 'Workflow execution cancelled', 'cancelled', 4],
      ['TIMED_OUT', undefined, undefined, "timed out: the run's execution timeout passed", 4],
    ];
    for (const [status, result, failure, text, exitCode] of cases) {
      expect(outcomeOf(status, result, failure), status).toMatchObject({ text, exitCode });
    }
    expect(outcomeOf('RUNNING', undefined)).toBeUndefined();
  });
});

describe('errors', () => {
  it("turns commander's messages into one line", () => {
    expect(usageMessage("error: unknown option '--wiat'\n(Did you mean --wait?)")).toBe(
      "unknown option '--wiat' (did you mean --wait?)",
    );
    expect(oneLine(new UsageError("unknown option '--wiat'", 'pgwarden backup', 1))).toBe(
      "unknown option '--wiat' (see: pgwarden backup --help)",
    );
    expect(oneLine(new UserError('no workflow x'))).toBe('no workflow x');
    expect(oneLine(new Error('a\n  b'))).toBe('a b');
  });

  it('names a command by its path', () => {
    const root = new Command('pgwarden');
    const sync = root.command('offsite').command('sync');
    expect(commandPath(sync)).toBe('pgwarden offsite sync');
  });
});

describe('a run waiting on a child', () => {
  it("shows the child's step and heartbeat under the parent's step and clock", () => {
    const child = { workflowId: 'pgwarden/main/app/full/20261122T020000Z', workflowType: 'fullBackup' };
    expect(childLabel(child)).toBe('app/full');
    expect(childLabel({ workflowId: 'other', workflowType: 'verifyBackup' })).toBe('verifyBackup');
    const parent = live({
      progress: { step: 'backup-databases', since: '', done: ['preflight', 'list-databases'], detail: 'app, shop' },
      children: [child],
    });
    const running = live({
      startTime: new Date(t0 + 5000),
      progress: { step: 'dump', since: '', done: ['preflight'] },
      activities: [activity({ heartbeat: { phase: 'dump', storedBytes: 2 * MiB } })],
    });
    const v = progressView(withChild(parent, running, childLabel(child)), {}, t0 + 10_000);
    expect(plainProgressLine(v)).toBe('backup-databases › app/full: dump: 2.0 MiB stored (10s)');
  });
});

describe('offsiteReportLines', () => {
  it('prints each repository on a line and each problem of a failed check on its own line', () => {
    const counts = { logical: { local: 2, remote: 2 }, base: { local: 2, remote: 2 }, wal: { local: 6, remote: 6 } };
    const lines = offsiteReportLines([
      {
        repository: 's3',
        error: 'offsite repository "s3" (s3://b/p/): credentials refused by 127.0.0.1 (SignatureDoesNotMatch)',
      },
      {
        repository: 'rsync',
        sync: {
          repository: 'rsync',
          uploaded: 10,
          uploadedBytes: 2048,
          uploadedKeys: [],
          alreadyThere: 0,
          syncedAt: '2026-11-22T05:00:00Z',
        },
        error:
          'offsite repository "rsync" failed its check (2 problems):\nmissing main/wal/000000010000000000000003.zst: not on the remote (5 bytes locally)\nunexpected main/logical/app/20261122T020000Z/extra.bin: not listed by manifest.json',
      },
      {
        repository: 'dr',
        check: { repository: 'dr', notShippedYet: 0, counts, contentChecked: 7, archived: 3, problems: [] },
      },
    ]);
    expect(lines).toEqual([
      's3: FAILED: offsite repository "s3" (s3://b/p/): credentials refused by 127.0.0.1 (SignatureDoesNotMatch)',
      'rsync: uploaded 10 (2.0 KiB), 0 already there; FAILED: offsite repository "rsync" failed its check (2 problems):',
      '  missing main/wal/000000010000000000000003.zst: not on the remote (5 bytes locally)',
      '  unexpected main/logical/app/20261122T020000Z/extra.bin: not listed by manifest.json',
      'dr: check passed: logical 2, base 2, wal 6 objects, 7 read back and hashed, 3 in an archive storage class (size and recorded sha256 only)',
    ]);
  });
});

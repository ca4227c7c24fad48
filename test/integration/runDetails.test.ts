// What the operator sees for a run, read back as the `temporal` CLI shows it (`-o json`): a restore
// waiting at `approve` says what approving does, until when it waits and how to answer; its approval
// timer and its activities carry summaries that read like the runbook's steps; a finished run says
// its outcome. Against PostgreSQL, pgwarden's real worker and the Temporal dev server.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { formatBytes } from '../../src/lib/diskSpace.js';
import type { FullBackupResult } from '../../src/workflows/fullBackup.js';
import type { Progress } from '../../src/workflows/messages.js';
import { testConfig, testSecrets } from '../helpers/config.js';
import { createSampleDatabase } from '../helpers/data.js';
import { createTestKey, type TestKey } from '../helpers/gpg.js';
import { startCluster, type TestCluster } from '../helpers/postgres.js';
import { startPgwardenWorker, testEnvironment, uniqueQueue, type RunningWorker } from '../helpers/temporal.js';

let cluster: TestCluster;
let key: TestKey;
let env: TestWorkflowEnvironment;
let dir: string;
let worker: RunningWorker;
let backup: FullBackupResult;
const queue = uniqueQueue('details');
const root = join(import.meta.dirname, '../..');
const BACKUP = '20261122T020000Z';

beforeAll(async () => {
  [cluster, key, env] = await Promise.all([startCluster(), createTestKey(), testEnvironment()]);
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-details-'));
  await createSampleDatabase(cluster, 'app', 0.05);
  const config = testConfig({ cluster, repository: join(dir, 'repo'), taskQueue: queue, key });
  worker = await startPgwardenWorker(env, config, testSecrets(cluster, key));
  backup = await env.client.workflow.execute('fullBackup', {
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

async function temporal<T>(...args: string[]): Promise<T> {
  const { stdout } = await execa(join(root, '.tools/bin/temporal'), [
    ...args,
    '--address',
    inject('temporalAddress'),
    '-o',
    'json',
  ]);
  return JSON.parse(stdout) as T;
}

/** The run's current details, as `temporal workflow metadata -w ID -o json` shows them. */
async function currentDetails(workflowId: string): Promise<string> {
  const meta = await temporal<{ queryResult: { currentDetails?: string }[] }>('workflow', 'metadata', '-w', workflowId);
  return meta.queryResult[0]?.currentDetails ?? '';
}

interface HistoryEvent {
  eventType: string;
  userMetadata?: { summary?: { data: string } };
  activityTaskScheduledEventAttributes?: { activityType: { name: string } };
  timerStartedEventAttributes?: { startToFireTimeout: string };
}

/** What `temporal workflow show -o json` records: each activity and timer with its summary. */
async function summaries(
  workflowId: string,
): Promise<{ activities: { name: string; summary?: string }[]; timers: { timeout: string; summary?: string }[] }> {
  const { events } = await temporal<{ events: HistoryEvent[] }>('workflow', 'show', '-w', workflowId);
  const summary = (e: HistoryEvent) =>
    e.userMetadata?.summary
      ? (JSON.parse(Buffer.from(e.userMetadata.summary.data, 'base64').toString()) as string)
      : undefined;
  return {
    activities: events
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => ({ name: e.activityTaskScheduledEventAttributes!.activityType.name, summary: summary(e) })),
    timers: events
      .filter((e) => e.timerStartedEventAttributes)
      .map((e) => ({ timeout: e.timerStartedEventAttributes!.startToFireTimeout, summary: summary(e) })),
  };
}

async function restoreAtApprove(name: string, backupId = BACKUP) {
  const workflowId = `${queue}/${name}`;
  const handle = await env.client.workflow.start('restoreDatabase', {
    taskQueue: queue,
    workflowId,
    args: [{ cluster: 'main', database: 'app', backupId, approvalTimeout: '2 hours' }],
  });
  for (let i = 0; (await handle.query<Progress>('progress')).step !== 'approve'; i++) {
    if (i > 300) throw new Error('never reached approve');
    await new Promise((r) => setTimeout(r, 200));
  }
  // The approval wait starts once the operators' channels have been told.
  for (let i = 0; !(await currentDetails(workflowId)).startsWith('**Waiting for approval**'); i++) {
    if (i > 100) throw new Error(`the details never said it waits: ${await currentDetails(workflowId)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { workflowId, handle };
}

/** Sends `signal` with the JSON the details told the operator to paste, filled in. */
async function answerAsTold(
  workflowId: string,
  details: string,
  signal: 'approve' | 'reject',
  approver: string,
  reason: string,
) {
  const pasted = /input `(\{.*?\})`/.exec(details)?.[1];
  expect(pasted).toBeDefined();
  const input = pasted!.replace('NAME', approver).replace('TEXT', reason);
  await execa(join(root, '.tools/bin/temporal'), [
    'workflow',
    'signal',
    '-w',
    workflowId,
    '--name',
    signal,
    '--input',
    input,
    '--address',
    inject('temporalAddress'),
  ]);
}

it('a restore waiting at approve says what, until when and how to answer; rejected, it says so', async () => {
  const before = Date.now();
  const { workflowId, handle } = await restoreAtApprove('rejected');
  const details = await currentDetails(workflowId);
  const after = Date.now();
  expect(details).toContain(
    `**Approving will:** restore main/app from backup ${BACKUP}; the live database is kept as app_pre_restore_20261122t020000z_`,
  );
  // The deadline is the wait's start plus approvalTimeout (2 hours), the start during this test.
  const [, until, since] = /\*\*Waiting for approval\*\* until (\S+) \(since (\S+)\);/.exec(details) ?? [];
  expect(Date.parse(until!) - Date.parse(since!)).toBe(2 * 3600_000);
  expect(Date.parse(since!)).toBeGreaterThanOrEqual(before - 1000);
  expect(Date.parse(since!)).toBeLessThanOrEqual(after + 1000);
  expect(details).toContain(
    'Send Signal, signal name `approve` (or `reject`), input `{"approver":"NAME","reason":"TEXT"}`',
  );
  expect(details).toContain(`\`pgwarden approve ${workflowId} --approver NAME --reason TEXT\``);

  // The approval wait is the one timer, named; the activities so far read like the runbook.
  const { activities, timers } = await summaries(workflowId);
  expect(timers).toEqual([{ timeout: '7200s', summary: 'waiting for approval' }]);
  expect(activities).toContainEqual({ name: 'checkIntegrity', summary: `check backup ${BACKUP} (sha256, decrypt)` });
  expect(activities.filter((a) => !a.summary)).toEqual([]);

  await answerAsTold(workflowId, details, 'reject', 'alice', 'wrong backup');
  expect(await handle.result()).toMatchObject({ outcome: 'rejected' });
  expect(await currentDetails(workflowId)).toMatch(
    /^\*\*Finished:\*\* rejected by alice: wrong backup; nothing was touched/,
  );
}, 120_000);

it('an approved restore labels each step it ran and ends saying what it restored', async () => {
  const { workflowId, handle } = await restoreAtApprove('approved');
  await answerAsTold(workflowId, await currentDetails(workflowId), 'approve', 'bob', 'INC-42');
  const result = await handle.result();
  expect(result).toMatchObject({ outcome: 'restored' });
  expect(await currentDetails(workflowId)).toMatch(
    new RegExp(
      `^\\*\\*Finished:\\*\\* restored app from backup ${BACKUP}; the previous database is kept as ${result.previousDatabase}`,
    ),
  );
  const { activities } = await summaries(workflowId);
  expect(activities.filter((a) => !a.summary)).toEqual([]);
  expect(activities.map((a) => a.summary)).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/^restore backup 20261122T020000Z into app_restore_\S+ with pg_restore$/),
      expect.stringMatching(/^rename app to app_pre_restore_\S+, app_restore_\S+ to app$/),
      'analyze app',
    ]),
  );
}, 120_000);

it('a restore that fails in its plan ends saying why', async () => {
  const workflowId = `${queue}/missing`;
  const handle = await env.client.workflow.start('restoreDatabase', {
    taskQueue: queue,
    workflowId,
    args: [{ cluster: 'main', database: 'app', backupId: '20991231T000000Z' }],
  });
  await expect(handle.result()).rejects.toThrow();
  expect(await currentDetails(workflowId)).toMatch(
    /^\*\*Finished:\*\* failed: no committed backup 20991231T000000Z of main\/app/,
  );
}, 120_000);

it('a backup labels every activity it ran like the runbook and ends saying what it backed up, and how big', async () => {
  const workflowId = `${queue}/backup`;
  const { activities } = await summaries(workflowId);
  expect(activities.map((a) => a.name)).toEqual([
    'preflightLogicalBackup',
    'createLogicalBackup',
    'applyLogicalRetention',
  ]);
  expect(activities.filter((a) => !a.summary || a.summary.length >= 200)).toEqual([]);
  expect(activities).toContainEqual({
    name: 'createLogicalBackup',
    summary: `dump main/app with pg_dump, compress, encrypt, commit as ${BACKUP}`,
  });
  expect(activities).toContainEqual({
    name: 'applyLogicalRetention',
    summary: "apply the retention policy to main/app's backups",
  });
  // The size said is the committed backup's, as pgwarden backups shows it.
  const [made] = backup.backups;
  expect(made!.bytes).toBeGreaterThan(0);
  expect(await currentDetails(workflowId)).toMatch(
    new RegExp(
      `^\\*\\*Finished:\\*\\* backed up main/app as ${BACKUP}, ${formatBytes(made!.bytes).replace('.', '\\.')} \\(at `,
    ),
  );
}, 60_000);

it('a backup of a database that does not exist ends saying why, and its activities are labelled too', async () => {
  const workflowId = `${queue}/backup-missing`;
  const handle = await env.client.workflow.start('fullBackup', {
    taskQueue: queue,
    workflowId,
    args: [{ cluster: 'main', database: 'nosuchdb', backupId: BACKUP }],
  });
  await expect(handle.result()).rejects.toThrow();
  expect(await currentDetails(workflowId)).toMatch(/^\*\*Finished:\*\* failed: .*nosuchdb/);
  const { activities } = await summaries(workflowId);
  expect(activities.length).toBeGreaterThan(0);
  expect(activities.filter((a) => !a.summary)).toEqual([]);
}, 120_000);

it('a verification and a retention plan label their activities and end saying what they found', async () => {
  const verified = await env.client.workflow.execute('verifyBackup', {
    taskQueue: queue,
    workflowId: `${queue}/verify`,
    args: [{ cluster: 'main', database: 'app', backupId: BACKUP }],
  });
  const verify = await summaries(`${queue}/verify`);
  expect(verify.activities.filter((a) => !a.summary || a.summary.length >= 200)).toEqual([]);
  expect(verify.activities).toContainEqual({
    name: 'dropScratchDatabase',
    summary: 'drop pgwarden_verify_20261122t020000z',
  });
  expect(await currentDetails(`${queue}/verify`)).toMatch(
    new RegExp(
      `^\\*\\*Finished:\\*\\* verified backup ${BACKUP} of main/app: restored in \\d+ s, ${verified.tables} tables, ${verified.rows} rows \\(at `,
    ),
  );
  expect(verified.rows).toBeGreaterThan(0);

  await env.client.workflow.execute('retention', {
    taskQueue: queue,
    workflowId: `${queue}/retention`,
    args: [{ cluster: 'main', database: 'app' }],
  });
  const { activities } = await summaries(`${queue}/retention`);
  expect(activities).toEqual([
    { name: 'applyLogicalRetention', summary: "plan the retention policy for main/app's backups" },
  ]);
  expect(await currentDetails(`${queue}/retention`)).toMatch(
    /^\*\*Finished:\*\* plan only, would delete 0 logical backups of main\/app \(at /,
  );
}, 120_000);

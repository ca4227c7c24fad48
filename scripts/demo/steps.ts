// The demo's procedures, each a real pgwarden workflow started with its labels (cluster, database,
// kind: the UI filters on them): fullBackup → verifyBackup → offsiteSync → baseBackup → the
// accident → pointInTimeRecovery in place to just before it, approved by "demo" → the check.
import type { WorkflowHandle } from '@temporalio/client';
import { liveStatus, startRun } from '../../src/cli/client.js';
import { formatDuration } from '../../src/cli/format.js';
import { formatBytes } from '../../src/lib/diskSpace.js';
import {
  baseBackupWorkflowId,
  formatBackupId,
  fullBackupWorkflowId,
  offsiteWorkflowId,
  pitrWorkflowId,
  verifyBackupWorkflowId,
} from '../../src/lib/ids.js';
import type { RunLabels } from '../../src/lib/visibility.js';
import type { BaseBackupWorkflowInput, BaseBackupWorkflowResult } from '../../src/workflows/baseBackup.js';
import type { FullBackupInput, FullBackupResult } from '../../src/workflows/fullBackup.js';
import type { ApprovalInput, Progress } from '../../src/workflows/messages.js';
import type { OffsiteSyncInput, OffsiteSyncResult } from '../../src/workflows/offsiteSync.js';
import type { PointInTimeRecoveryInput, PointInTimeRecoveryResult } from '../../src/workflows/pointInTimeRecovery.js';
import type { VerifyBackupInput, VerifyBackupResult } from '../../src/workflows/verifyBackup.js';
import { causeAccident, checkUndone } from './accident.js';
import { CLUSTER, DATABASE, type DemoStack } from './stack.js';

export interface Row {
  step: string;
  workflowId: string;
  seconds: number;
  result: string;
}

/** A step that takes longer is stuck: the demo terminates it and fails. */
const STEP_TIMEOUT_MS = 10 * 60_000;
const APPROVAL: ApprovalInput = { approver: 'demo', reason: 'demo: undo the accident (DELETE and DROP TABLE after T)' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A failure as one line: the causes' messages, without the SDK's generic wrappers. */
export function explain(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (!/^(Workflow execution failed|Activity task failed|Child Workflow execution failed)$/.test(e.message))
      parts.push(e.message);
  }
  return (parts.join(': ') || String(err)).replace(/\s*\n\s*/g, ' | ');
}

/**
 * Waits for a workflow's result. Meanwhile, twice a second: `tick` (e.g. answer an approval), a
 * line for each failed activity attempt the server retries, and every 10 s where a slow step is.
 */
async function awaitResult<T>(
  handle: WorkflowHandle,
  say: (line: string) => void,
  tick?: () => Promise<void>,
): Promise<T> {
  const result = handle.result() as Promise<T>;
  const settled = result.then(
    () => true,
    () => true,
  );
  const reported = new Set<string>();
  const started = Date.now();
  let lastFailure = '';
  let nextNote = started + 10_000;
  while (!(await Promise.race([settled, sleep(500).then(() => false)]))) {
    await tick?.();
    const live = await liveStatus(handle, { queryTimeoutMs: 2000 }).catch(() => undefined);
    for (const a of live?.activities ?? []) {
      if (a.attempt > 1 && a.lastFailure && !reported.has(`${a.activityId}#${a.attempt}`)) {
        reported.add(`${a.activityId}#${a.attempt}`);
        lastFailure = `${a.type}: ${a.lastFailure}`;
        say(`  ${a.type} attempt ${a.attempt - 1} failed, retrying: ${a.lastFailure.split('\n')[0]}`);
      }
    }
    if (live && Date.now() > nextNote) {
      nextNote += 10_000;
      const phase = live.heartbeat?.phase;
      say(
        `  still running after ${formatDuration((Date.now() - started) / 1000)}: step ${live.progress?.step ?? '?'}${typeof phase === 'string' ? ` (${phase})` : ''}`,
      );
    }
    if (Date.now() - started > STEP_TIMEOUT_MS) {
      await handle.terminate('the demo gave up waiting').catch(() => undefined);
      throw new Error(
        `not finished after ${STEP_TIMEOUT_MS / 60_000} minutes${lastFailure ? `; last failure: ${lastFailure}` : ''}`,
      );
    }
  }
  return result;
}

export async function runDemo(stack: DemoStack, say: (line: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  // Production-style ids (pgwarden/main/app/full/20261122T133023Z), unique on a shared server.
  const stamp = () => formatBackupId(new Date()) + (stack.runSuffix ? `-${stack.runSuffix}` : '');
  const link = (workflowId: string, runId: string) =>
    stack.uiAddress
      ? `${stack.uiAddress}/namespaces/${stack.config.temporal.namespace}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`
      : workflowId;

  async function run<I extends { cluster: string }, R>(
    step: string,
    labels: Omit<RunLabels, 'cluster'>,
    workflowId: string,
    input: I,
    describe: (r: R) => string,
    tick?: (handle: WorkflowHandle) => Promise<void>,
  ): Promise<R> {
    const started = Date.now();
    try {
      const handle = await startRun(
        stack.client,
        stack.config,
        { cluster: CLUSTER, ...labels },
        { workflowId, args: [input] },
      );
      say(`${step}: ${link(workflowId, (await handle.describe()).runId)}`);
      const result = await awaitResult<R>(handle, say, tick && (() => tick(handle)));
      const row = { step, workflowId, seconds: (Date.now() - started) / 1000, result: describe(result) };
      rows.push(row);
      say(`  ${row.result} (${formatDuration(row.seconds)})`);
      return result;
    } catch (err) {
      throw new Error(
        `${step} (${workflowId}) failed after ${formatDuration((Date.now() - started) / 1000)}: ${explain(err)}`,
        {
          cause: err,
        },
      );
    }
  }

  const db = { cluster: CLUSTER, database: DATABASE };
  await run<FullBackupInput, FullBackupResult>(
    'fullBackup',
    { database: DATABASE, kind: 'full' },
    fullBackupWorkflowId(CLUSTER, DATABASE, stamp()),
    db,
    (r) => {
      const b = r.backups[0]!;
      return `backup ${b.backupId}: ${formatBytes(b.bytes)} (pg_dump → zstd → OpenPGP), ${b.tables} tables, ${b.rows} rows`;
    },
  );
  await run<VerifyBackupInput, VerifyBackupResult>(
    'verifyBackup',
    { database: DATABASE, kind: 'verify' },
    verifyBackupWorkflowId(CLUSTER, DATABASE, stamp()),
    db,
    (r) =>
      `restored ${r.backupId} into a temporary database in ${formatDuration(r.restoreSeconds)}: ${r.tables} tables, ${r.rows} rows match the manifest`,
  );
  await run<OffsiteSyncInput, OffsiteSyncResult>(
    'offsiteSync',
    { kind: 'offsite' },
    offsiteWorkflowId(CLUSTER, stamp()),
    { cluster: CLUSTER },
    (r) =>
      r.repositories
        .map(
          (x) =>
            `${x.repository}: ${x.sync?.uploaded ?? 0} objects (${formatBytes(x.sync?.uploadedBytes ?? 0)}) uploaded, remote check passed`,
        )
        .join('; '),
  );
  await run<BaseBackupWorkflowInput, BaseBackupWorkflowResult>(
    'baseBackup',
    { kind: 'base' },
    baseBackupWorkflowId(CLUSTER, stamp()),
    { cluster: CLUSTER },
    (r) => `base backup ${r.backupId}: ${formatBytes(r.bytes)}, WAL ${r.startLsn} to ${r.stopLsn}`,
  );

  say(
    'the accident: a marker batch before time T; after T half of "orders" is deleted, "documents" dropped, new users arrive',
  );
  const accident = await causeAccident(stack.setup.cluster, say);

  let approved = false;
  const approveWhenWaiting = async (handle: WorkflowHandle) => {
    if (approved || (await handle.query<Progress>('progress').catch(() => undefined))?.step !== 'approve') return;
    say(
      `  waiting at step approve; the demo approves as "${APPROVAL.approver}" (like \`pgwarden approve ${handle.workflowId} --approver ${APPROVAL.approver} --reason ...\`)`,
    );
    await handle.signal('approve', APPROVAL);
    approved = true;
  };
  const pitr = await run<PointInTimeRecoveryInput, PointInTimeRecoveryResult>(
    'pointInTimeRecovery',
    { kind: 'pitr' },
    pitrWorkflowId(CLUSTER, stamp()),
    { cluster: CLUSTER, target: { time: accident.target }, mode: 'in-place' },
    (r) =>
      `${r.outcome} to T from base backup ${r.backupId}, timeline ${r.recovery?.timeline}; ${r.steps.map((s) => `${s.step} ${formatDuration(s.seconds)}`).join(', ')}`,
    approveWhenWaiting,
  );
  if (pitr.outcome !== 'recovered') throw new Error(`pointInTimeRecovery ended ${pitr.outcome}, not recovered`);
  say(`  approved by ${pitr.decision?.approver}; the previous data directory is kept at ${pitr.previousDataDirectory}`);

  const checked = Date.now();
  const result = await checkUndone(stack.setup.cluster, accident);
  rows.push({ step: 'check', workflowId: '-', seconds: (Date.now() - checked) / 1000, result });
  say(`check: ${result}`);
  return rows;
}

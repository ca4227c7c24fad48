// fullBackup's orchestration with stubbed activities on the real dev server: retries,
// non-retryable failures, cancellation reaching the running activity, fan-out for "*".
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { Worker } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LogicalBackupInput, PreflightResult } from '../../src/activities/index.js';
import { nonRetryable, retryable } from '../../src/lib/errors.js';
import type { FullBackupResult } from '../../src/workflows/fullBackup.js';
import { readHistory } from '../helpers/histories.js';
import { backupOf } from '../helpers/stubRuns.js';
import { startStubWorker, testEnvironment, uniqueQueue, workflowBundle } from '../helpers/temporal.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await testEnvironment();
});
afterAll(async () => {
  await env?.teardown();
});

const preflightOk = async (): Promise<PreflightResult> => ({
  serverVersion: '15.18',
  databaseBytes: 1,
  expectedBytes: 1,
  freeBytes: 2,
  recipients: [],
  backupExists: false,
});

async function withStubs<T>(activities: object, fn: (queue: string) => Promise<T>): Promise<T> {
  const queue = uniqueQueue('wf-full');
  const worker = await startStubWorker(env, queue, {
    listClusterDatabases: async () => [],
    applyLogicalRetention: async () => ({ keep: [], delete: [] }),
    ...activities,
  });
  try {
    return await fn(queue);
  } finally {
    await worker.stop();
  }
}

it('retries a transient dump failure and succeeds', async () => {
  const attempts: number[] = [];
  const result = await withStubs(
    {
      preflightLogicalBackup: preflightOk,
      createLogicalBackup: async (input: LogicalBackupInput) => {
        attempts.push(Context.current().info.attempt);
        if (attempts.length < 3) throw retryable('DumpFailed', 'pg_dump failed: server closed the connection');
        return backupOf(input);
      },
    },
    (queue) =>
      env.client.workflow.execute('fullBackup', {
        taskQueue: queue,
        workflowId: `${queue}/retry`,
        args: [{ cluster: 'main', database: 'app', backupId: '20261122T020000Z' }],
        // The workflow's retry backoff starts at 10 s; the dev server honours it, so this test takes ~30 s.
      }) as Promise<FullBackupResult>,
  );
  expect(attempts).toEqual([1, 2, 3]);
  expect(result.backups[0]).toMatchObject({ database: 'app', backupId: '20261122T020000Z' });
}, 120_000);

it('stops at a non-retryable preflight failure without dumping', async () => {
  let dumped = false;
  const err = await withStubs(
    {
      preflightLogicalBackup: async () => {
        throw nonRetryable('UnknownDatabase', 'cluster "main" has no database "nope"');
      },
      createLogicalBackup: async () => {
        dumped = true;
      },
    },
    (queue) =>
      env.client.workflow
        .execute('fullBackup', {
          taskQueue: queue,
          workflowId: `${queue}/bad`,
          args: [{ cluster: 'main', database: 'nope' }],
        })
        .catch((e: unknown) => e),
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = ((err as WorkflowFailedError).cause as ActivityFailure).cause as ApplicationFailure;
  expect(cause.type).toBe('UnknownDatabase');
  expect(dumped).toBe(false);
});

it('delivers cancellation to the running dump and waits for its cleanup', async () => {
  let cleanedUp = false;
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  const err = await withStubs(
    {
      preflightLogicalBackup: preflightOk,
      createLogicalBackup: async () => {
        const ctx = Context.current();
        started();
        try {
          for (;;) {
            ctx.heartbeat({ phase: 'dump', rawBytes: 1, storedBytes: 1 });
            await ctx.sleep(200);
          }
        } finally {
          cleanedUp = true; // the real activity kills pg_dump and removes its partial directory here
        }
      },
    },
    async (queue) => {
      const handle = await env.client.workflow.start('fullBackup', {
        taskQueue: queue,
        workflowId: `${queue}/cancel`,
        args: [{ cluster: 'main', database: 'app' }],
      });
      await running;
      await handle.cancel();
      return handle.result().catch((e: unknown) => e);
    },
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  expect(cleanedUp).toBe(true);
});

it('backs up every database as its own child workflow with a readable id', async () => {
  const seen: string[] = [];
  const result = await withStubs(
    {
      listClusterDatabases: async () => ['app', 'crm'],
      preflightLogicalBackup: preflightOk,
      createLogicalBackup: async (input: LogicalBackupInput) => {
        seen.push(Context.current().info.workflowExecution?.workflowId ?? '');
        return backupOf(input);
      },
    },
    (queue) =>
      env.client.workflow.execute('fullBackup', {
        taskQueue: queue,
        workflowId: `${queue}/all`,
        args: [{ cluster: 'main', database: '*', backupId: '20261122T020000Z' }],
      }) as Promise<FullBackupResult>,
  );
  expect(result.backups.map((b) => b.database)).toEqual(['app', 'crm']);
  expect(seen).toEqual(['pgwarden/main/app/full/20261122T020000Z', 'pgwarden/main/crm/full/20261122T020000Z']);
});

it('"*": a database that fails does not stop the others; the run then fails naming it, its details holding what was backed up', async () => {
  const dumped: string[] = [];
  const err = await withStubs(
    {
      listClusterDatabases: async () => ['app', 'bad name', 'crm'],
      preflightLogicalBackup: async (input: LogicalBackupInput) => {
        if (input.database === 'bad name')
          throw nonRetryable('InvalidInput', 'database name "bad name" cannot be used as a repository path component');
        return preflightOk();
      },
      createLogicalBackup: async (input: LogicalBackupInput) => {
        dumped.push(input.database);
        return backupOf(input);
      },
    },
    (queue) =>
      env.client.workflow
        .execute('fullBackup', {
          taskQueue: queue,
          workflowId: `${queue}/all-one-bad`,
          args: [{ cluster: 'main', database: '*', backupId: '20261122T020000Z' }],
        })
        .catch((e: unknown) => e),
  );
  expect(dumped).toEqual(['app', 'crm']);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect(cause.type).toBe('BackupFailed');
  expect(cause.nonRetryable).toBe(true);
  expect(cause.message).toBe(
    '1 of 3 databases failed to back up (20261122T020000Z): bad name: database name "bad name" cannot be used as a repository path component',
  );
  expect(cause.details).toEqual([
    {
      cluster: 'main',
      backupId: '20261122T020000Z',
      failed: [
        { database: 'bad name', error: 'database name "bad name" cannot be used as a repository path component' },
      ],
      backedUp: [
        { database: 'app', backupId: '20261122T020000Z' },
        { database: 'crm', backupId: '20261122T020000Z' },
      ],
    },
  ]);
});

it('"*": cancelled while a database is being dumped, it stops at once (the next database is not started)', async () => {
  const started: string[] = [];
  let running!: () => void;
  const dumping = new Promise<void>((r) => (running = r));
  const err = await withStubs(
    {
      listClusterDatabases: async () => ['app', 'crm'],
      preflightLogicalBackup: preflightOk,
      createLogicalBackup: async (input: LogicalBackupInput) => {
        started.push(input.database);
        const ctx = Context.current();
        running();
        for (;;) {
          ctx.heartbeat({ phase: 'dump', rawBytes: 1, storedBytes: 1 });
          await ctx.sleep(200);
        }
      },
    },
    async (queue) => {
      const handle = await env.client.workflow.start('fullBackup', {
        taskQueue: queue,
        workflowId: `${queue}/all-cancel`,
        args: [{ cluster: 'main', database: '*' }],
      });
      await dumping;
      await handle.cancel();
      return handle.result().catch((e: unknown) => e);
    },
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  expect(started).toEqual(['app']);
});

it('"*": a run recorded before (it stopped at the first failed database) replays on today\'s code', async () => {
  // Recorded from the earlier code: app backed up, "bad name" failed, the run failed there and crm was never started.
  const history = await readHistory('fullBackup-all-stopped-at-first-failure.json');
  await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, history, 'fullBackup-all-before');
});

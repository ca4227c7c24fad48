// fullBackup from a standby with stubbed activities on the real dev server: preflight chose the
// standby, the dump runs, and replay is resumed after it whatever the dump did (the backstop for a
// worker killed for good). baseBackup from a standby: the same commands as from the primary, the
// chosen source passed to pg_basebackup. The first run of each is recorded for the replay test.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LogicalBackupInput } from '../../src/activities/index.js';
import { recordHistory } from '../helpers/histories.js';
import { backupOf, withStubRun } from '../helpers/stubRuns.js';
import { testEnvironment } from '../helpers/temporal.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await testEnvironment();
});
afterAll(async () => {
  await env?.teardown();
});

const source = { role: 'standby', name: 'replica1', host: 'db2', port: 5432, lagBytes: 120 } as const;
const stubs = (dump: (input: LogicalBackupInput) => unknown) => ({
  preflightLogicalBackup: async () => ({
    serverVersion: '17.2',
    databaseBytes: 1,
    expectedBytes: 1,
    freeBytes: 2,
    recipients: [],
    backupExists: false,
    source,
  }),
  createLogicalBackup: async (input: LogicalBackupInput) => dump(input),
  resumeStandbyReplay: async () => ({ resumed: true }),
  applyLogicalRetention: async () => ({ keep: [], delete: [], waitingOffsite: [] }),
});

it('from a standby: the dump gets the chosen source, then replay is resumed, then retention', async () => {
  await withStubRun(
    env,
    'wf-standby',
    stubs((input) => ({ ...backupOf(input), source: input.source })),
    async (run) => {
      const handle = await env.client.workflow.start('fullBackup', {
        taskQueue: run.queue,
        workflowId: `${run.queue}/from-standby`,
        args: [{ cluster: 'main', database: 'app', backupId: '20261125T020000Z' }],
      });
      const result = await handle.result();
      await recordHistory(handle, 'fullBackup-from-standby');
      expect(run.calls).toEqual([
        'preflightLogicalBackup',
        'createLogicalBackup',
        'resumeStandbyReplay',
        'applyLogicalRetention',
      ]);
      expect(run.args.createLogicalBackup).toMatchObject({ source });
      expect(run.args.resumeStandbyReplay).toEqual({ cluster: 'main', standby: 'replica1' });
      expect(result.backups[0].source).toEqual(source);
    },
  );
});

it('from a standby, the dump failing for good: replay is resumed all the same, and the run fails', async () => {
  await withStubRun(
    env,
    'wf-standby-fail',
    stubs(() => {
      throw ApplicationFailure.nonRetryable('pg_dump: connection lost', 'DumpFailed');
    }),
    async (run) => {
      const handle = await env.client.workflow.start('fullBackup', {
        taskQueue: run.queue,
        workflowId: `${run.queue}/from-standby-failed`,
        args: [{ cluster: 'main', database: 'app', backupId: '20261125T030000Z' }],
      });
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect(run.calls).toEqual(['preflightLogicalBackup', 'createLogicalBackup', 'resumeStandbyReplay']);
    },
  );
});

it('baseBackup from a standby: the same steps as from the primary, pg_basebackup given the chosen source', async () => {
  const preflight = { serverVersion: '17.2', systemIdentifier: '1', clusterBytes: 1, freeBytes: 2, source };
  await withStubRun(
    env,
    'wf-standby-base',
    {
      preflightBaseBackup: async () => preflight,
      createBaseBackup: async (input: { cluster: string; backupId: string; source?: typeof source }) => ({
        ...input,
        path: '/repo',
        bytes: 10,
        timeline: 1,
        startLsn: '0/2000028',
        stopLsn: '0/3000000',
        seconds: 1,
        reused: false,
      }),
      applyBaseRetention: async () => ({ keep: [], delete: [], waitingOffsite: [] }),
    },
    async (run) => {
      const handle = await env.client.workflow.start('baseBackup', {
        taskQueue: run.queue,
        workflowId: `${run.queue}/base-from-standby`,
        args: [{ cluster: 'main', backupId: '20261125T050000Z' }],
      });
      const result = await handle.result();
      await recordHistory(handle, 'baseBackup-from-standby');
      expect(run.calls).toEqual(['preflightBaseBackup', 'createBaseBackup', 'applyBaseRetention']);
      expect(run.args.createBaseBackup).toEqual({ cluster: 'main', backupId: '20261125T050000Z', source });
      expect(result).toMatchObject({ source, preflight });
    },
  );
});

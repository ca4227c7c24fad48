// The routine procedures with stubbed activities on the real dev server: backups ("*" with its
// child runs and their verifications), verification of "*", the base backup, offsite sync, WAL
// maintenance, the health check, retention and the repository read each run their steps in order.
// With PGWARDEN_RECORD_HISTORIES=1 each run's history is recorded for test/workflows/replay.test.ts.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LogicalBackupInput, VerifyTarget } from '../../src/activities/index.js';
import { fullBackupWorkflowId, verifyBackupWorkflowId } from '../../src/lib/ids.js';
import { recordHistory } from '../helpers/histories.js';
import { backupOf, withStubRun, type StubRun } from '../helpers/stubRuns.js';
import { testEnvironment } from '../helpers/temporal.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await testEnvironment();
});
afterAll(async () => {
  await env?.teardown();
});

type Stub = (...args: never[]) => unknown;
// Backup ids of their own: child runs have fixed ids, which fullBackup.test.ts's runs must not meet.
const backupId = '20261124T020000Z';
const verifyId = '20261124T030000Z';
const noRetention = { keep: [], delete: [], waitingOffsite: [] };
const walRetention = {
  dryRun: false,
  deleted: ['000000010000000000000001'],
  kept: 3,
  bytesFreed: 16,
  waitingOffsite: 0,
};

const stubs: Record<string, Stub> = {
  // fullBackup
  listClusterDatabases: async () => ['app', 'crm'],
  preflightLogicalBackup: async () => ({
    serverVersion: '17.2',
    databaseBytes: 1,
    expectedBytes: 1,
    freeBytes: 2,
    recipients: [],
    backupExists: false,
  }),
  createLogicalBackup: async (input: LogicalBackupInput) => backupOf(input),
  applyLogicalRetention: async () => noRetention,
  // verifyBackup
  planVerifyAll: async () => ({
    run: verifyId,
    targets: [
      { cluster: 'main', database: 'app', backupId: verifyId },
      { cluster: 'main', database: 'crm', backupId: verifyId },
    ],
  }),
  fetchLogicalFromOffsite: async () => ({ files: 0, bytes: 0 }),
  planVerify: async (input: VerifyTarget) => ({
    ...input,
    restoreCluster: input.cluster,
    scratchDatabase: `pgwarden_verify_${input.database}`,
  }),
  restoreIntoScratch: async () => ({ restoreSeconds: 1 }),
  checkIntegrity: async () => ({ bytes: 10 }),
  compareWithManifest: async () => ({ tables: 1, rows: 1, checks: [], privileges: '3 objects compared' }),
  recordVerification: async () => undefined,
  dropScratchDatabase: async () => undefined,
  // baseBackup
  preflightBaseBackup: async () => ({ serverVersion: '17.2', systemIdentifier: '1', clusterBytes: 1, freeBytes: 2 }),
  createBaseBackup: async (input: { cluster: string; backupId: string }) => ({
    ...input,
    path: '/repo',
    bytes: 10,
    timeline: 1,
    startLsn: '0/2000028',
    stopLsn: '0/2000100',
    seconds: 1,
    reused: false,
  }),
  applyBaseRetention: async () => noRetention,
  // offsiteSync
  planOffsite: async () => ['s3', 'rsync'],
  probeOffsite: async () => undefined,
  syncToOffsite: async (t: { repository: string }) => ({
    repository: t.repository,
    uploaded: 1,
    uploadedBytes: 10,
    uploadedKeys: ['k'],
    alreadyThere: 0,
    syncedAt: '2026-11-24T02:00:00Z',
  }),
  checkOffsite: async () => ({ contentChecked: 1, problems: [] }),
  applyOffsiteRetention: async (t: { repository: string }) => ({
    repository: t.repository,
    removedObjects: 0,
    removed: [],
  }),
  // walMaintenance, retention
  archiverHealth: async () => ({
    archiveMode: 'on',
    lastArchivedWal: null,
    lastArchivedAt: null,
    secondsSinceLastArchived: null,
    segmentsWaiting: 0,
    alerts: [],
  }),
  applyWalRetention: async () => walRetention,
  walArchiveSize: async () => ({ files: 3, bytes: 48 }),
  listBackedUpDatabases: async () => ['app'],
  // healthCheck, repositoryInfo
  checkHealth: async () => ({
    snapshot: { at: '2026-11-24T02:00:00Z' },
    alerts: [{ message: 'no verified restore of main/app for 8 days' }],
  }),
  notifyHealth: async () => ({ sent: 'alert' }),
  repositoryInfo: async () => ({ clusters: [] }),
};

/** Runs `type` with `input` to its end and records its history as `<type>-<name>` (and any named child runs'). */
async function routine(type: string, name: string, input: object, children: Record<string, string> = {}) {
  return withStubRun(env, `wf-${type}`, stubs, async (run: StubRun) => {
    const handle = await env.client.workflow.start(type, {
      taskQueue: run.queue,
      workflowId: `${run.queue}/${name}`,
      args: [input],
    });
    const result = await handle.result();
    await recordHistory(handle, `${type}-${name}`);
    for (const [id, history] of Object.entries(children))
      await recordHistory(env.client.workflow.getHandle(id), history);
    return { result, calls: run.calls };
  });
}

const verified = [
  'fetchLogicalFromOffsite',
  'planVerify',
  'restoreIntoScratch',
  'checkIntegrity',
  'compareWithManifest',
  'recordVerification',
  'dropScratchDatabase',
];

it('fullBackup "*" with verify: each database a child run, each verified by its own child verifyBackup', async () => {
  const { result, calls } = await routine(
    'fullBackup',
    'all-verified',
    { cluster: 'main', database: '*', backupId, verify: true },
    {
      [fullBackupWorkflowId('main', 'app', backupId)]: 'fullBackup-one-verified',
      [verifyBackupWorkflowId('main', 'app', backupId)]: 'verifyBackup-one',
    },
  );
  const one = ['preflightLogicalBackup', 'createLogicalBackup', ...verified, 'applyLogicalRetention'];
  expect(calls).toEqual(['listClusterDatabases', ...one, ...one]);
  expect(result).toMatchObject({
    backups: [{ database: 'app' }, { database: 'crm' }],
    verifications: [{ database: 'app' }, { database: 'crm' }],
  });
});

it('verifyBackup "*": each database of the newest "*" run verified by a child run', async () => {
  const { result, calls } = await routine('verifyBackup', 'all', { cluster: 'main', database: '*' });
  expect(calls).toEqual(['planVerifyAll', ...verified, ...verified]);
  expect(result).toMatchObject({ database: '*', backupId: verifyId, tables: 2, rows: 2 });
});

it('baseBackup: preflight → pg_basebackup → retention', async () => {
  const { result, calls } = await routine('baseBackup', 'one', { cluster: 'main', backupId });
  expect(calls).toEqual(['preflightBaseBackup', 'createBaseBackup', 'applyBaseRetention']);
  expect(result).toMatchObject({ backupId, stopLsn: '0/2000100' });
});

it('offsiteSync: per repository probe → upload → check → retention', async () => {
  const { result, calls } = await routine('offsiteSync', 'two-repositories', { cluster: 'main' });
  const each = ['probeOffsite', 'syncToOffsite', 'checkOffsite', 'applyOffsiteRetention'];
  expect(calls).toEqual(['planOffsite', ...each, ...each]);
  expect(result).toMatchObject({ repositories: [{ repository: 's3' }, { repository: 'rsync' }] });
});

it('walMaintenance: archiver health → retention → size', async () => {
  const { result, calls } = await routine('walMaintenance', 'one', { cluster: 'main' });
  expect(calls).toEqual(['archiverHealth', 'applyWalRetention', 'walArchiveSize']);
  expect(result).toMatchObject({ retention: walRetention, alerts: [] });
});

it('healthCheck: check → notify', async () => {
  const { result, calls } = await routine('healthCheck', 'alerting', { cluster: 'main' });
  expect(calls).toEqual(['checkHealth', 'notifyHealth']);
  expect(result).toMatchObject({ healthy: false, notification: { sent: 'alert' } });
});

it('retention, planned: logical per database → base → WAL, nothing applied', async () => {
  const { result, calls } = await routine('retention', 'plan', { cluster: 'main' });
  expect(calls).toEqual(['listBackedUpDatabases', 'applyLogicalRetention', 'applyBaseRetention', 'applyWalRetention']);
  expect(result).toMatchObject({ applied: false, logical: [{ database: 'app' }] });
});

it('repositoryInfo: one read on a worker', async () => {
  const { result, calls } = await routine('repositoryInfo', 'one', { cluster: 'main' });
  expect(calls).toEqual(['repositoryInfo']);
  expect(result).toEqual({ clusters: [] });
});

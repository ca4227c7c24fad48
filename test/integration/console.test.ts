// The console commands of docs/console.md, run exactly as printed (the block between `console:begin` and
// `console:end`), against pgwarden's real worker on queue `pgwarden`, a PostgreSQL 15 cluster that
// archives through `pgwarden wal-push`, and an S3 offsite repository: if the docs say it, it works.
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { ownedScheduleIds } from '../../src/cli/scheduleOps.js';
import type { Progress } from '../../src/workflows/messages.js';
import { PGWARDEN, ROOT, startArchivingCluster, type ArchivingSetup } from '../helpers/archiving.js';
import { testSecrets } from '../helpers/config.js';
import { readDocs } from '../helpers/docs.js';
import { startS3Server, type S3Server } from '../helpers/s3.js';
import { startPgwardenWorker, testEnvironment, type RunningWorker } from '../helpers/temporal.js';

// The docs' queue. No other test file uses it (each has its own), so this worker is alone on it.
const queue = 'pgwarden';
const S3_KEY_ENV = 'PGWARDEN_TEST_S3_KEY';
const S3_SECRET_ENV = 'PGWARDEN_TEST_S3_SECRET';
let setup: ArchivingSetup;
let env: TestWorkflowEnvironment;
let s3: S3Server;
let worker: RunningWorker;
let binDir: string;

/** The commands of the docs' console block, one per line, comments and blank lines left out. */
async function consoleCommands(): Promise<string[]> {
  const blocks = (await readDocs()).flatMap((d) => [
    ...d.text.matchAll(/<!-- console:begin -->\n```sh\n([\s\S]*?)```\n<!-- console:end -->/g),
  ]);
  if (blocks.length !== 1)
    throw new Error(`README.md and docs/ have ${blocks.length} console:begin/console:end blocks, not one`);
  const block = blocks[0]!;
  return block[1]!.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
}

async function waitForStep(workflowId: string, step: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const progress = await env.client.workflow
      .getHandle(workflowId)
      .query<Progress>('progress')
      .catch(() => undefined);
    if (progress?.step === step) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${workflowId} never reached step ${step}`);
}

beforeAll(async () => {
  [env, s3] = await Promise.all([testEnvironment(), startS3Server()]);
  await s3.bucket('offsite');
  setup = await startArchivingCluster({
    taskQueue: queue,
    extra: {
      repositories: {
        s3: {
          type: 's3',
          bucket: 'offsite',
          endpoint: s3.endpoint,
          forcePathStyle: true,
          accessKeyIdEnv: S3_KEY_ENV,
          secretAccessKeyEnv: S3_SECRET_ENV,
        },
      },
    },
  });
  await setup.cluster.query('CREATE DATABASE app');
  await setup.cluster.query(
    `CREATE TABLE items (id serial PRIMARY KEY, note text); INSERT INTO items (note) SELECT md5(g::text) FROM generate_series(1, 2000) g`,
    'app',
  );
  worker = await startPgwardenWorker(env, setup.config, {
    ...testSecrets(setup.cluster),
    [S3_KEY_ENV]: s3.accessKey,
    [S3_SECRET_ENV]: s3.secretKey,
  });
  // `pgwarden` on PATH, as after `npm link`.
  binDir = await mkdtemp(join(tmpdir(), 'pgwarden-console-bin-'));
  await symlink(PGWARDEN, join(binDir, 'pgwarden'));
}, 180_000);

afterAll(async () => {
  if (env && setup) {
    for (const id of await ownedScheduleIds(env.client, setup.config)) {
      const handle = env.client.schedule.getHandle(id);
      for (const a of (await handle.describe()).info.recentActions) {
        if (a.action.type === 'startWorkflow')
          await env.client.workflow
            .getHandle(a.action.workflow.workflowId)
            .result()
            .catch(() => undefined);
      }
      await handle.delete();
    }
  }
  await worker?.stop();
  await Promise.all([
    setup?.remove(),
    env?.teardown(),
    s3?.destroy(),
    binDir && rm(binDir, { recursive: true, force: true }),
  ]);
});

/** List commands and a run or schedule each must show. */
const LISTED: [string, string][] = [
  [`temporal workflow list --query "PgwardenCluster='main' AND PgwardenKind='full'"`, 'pgwarden/main/app/full/console'],
  ['temporal schedule list', 'pgwarden/main/health'],
];

describe('the console commands of docs/console.md', () => {
  it('each runs as printed and succeeds', async () => {
    const commands = await consoleCommands();
    expect(commands.length).toBeGreaterThan(20);
    const outputs = new Map<string, string>();
    for (const command of commands) {
      // An approval is sent once the run waits for it, as the docs say.
      const signal = /workflow signal --workflow-id (\S+) --name approve/.exec(command);
      if (signal) await waitForStep(signal[1]!, 'approve');
      const run = () =>
        execa('bash', ['-c', command], {
          reject: false,
          cwd: setup.dir,
          env: {
            PATH: `${binDir}:${join(ROOT, '.tools/bin')}:${process.env.PATH}`,
            TEMPORAL_ADDRESS: inject('temporalAddress'),
            PGWARDEN_CONFIG: setup.configFile,
            PGWARDEN_FROM_SOURCE: '1',
          },
        });
      let r = await run();
      // Lists come from the server's visibility store, which lags a start by a moment: as an
      // operator would, look again.
      const lists = LISTED.find(([prefix]) => command.startsWith(prefix));
      for (let i = 0; lists && r.exitCode === 0 && !r.stdout.includes(lists[1]) && i < 20; i++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        r = await run();
      }
      expect(r.exitCode, `${command}\n${r.stdout}\n${r.stderr}`).toBe(0);
      outputs.set(command, r.stdout);
    }
    const out = (prefix: string) => [...outputs].find(([c]) => c.startsWith(prefix))![1];
    expect(out('temporal workflow execute --type pointInTimeRecovery')).toContain('rehearsed');
    expect(out('temporal workflow result --workflow-id pgwarden/main/app/restore/console')).toContain('restored');
    for (const [prefix, listed] of LISTED) expect(out(prefix)).toContain(listed);
    // The approval is recorded with who and why.
    const restored = (await env.client.workflow.getHandle('pgwarden/main/app/restore/console').result()) as {
      decision: { approver: string; reason: string };
    };
    expect(restored.decision).toMatchObject({ approver: 'alice', reason: 'INC-42' });
  });
});

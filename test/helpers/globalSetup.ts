// One Temporal dev server per test run, and the workflow bundle built once for every worker.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { startDevServer, temporalBinary } from '../../src/worker/devServer.js';
import { workflowsPath } from '../../src/worker/worker.js';
import { freePort } from './ports.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    workflowBundlePath: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (!temporalBinary()) {
    throw new Error(
      `Temporal CLI not found (.tools/bin/temporal): run scripts/setup.sh (CI=${process.env.CI ?? 'unset'})`,
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'pgwarden-temporal-'));
  const [server, bundle] = await Promise.all([
    freePort().then((port) => startDevServer({ port, readyTimeoutMs: 120_000 })),
    bundleWorkflowCode({ workflowsPath: workflowsPath(), logger: quietLogger }),
  ]);
  const bundlePath = join(dir, 'workflow-bundle.js');
  await writeFile(bundlePath, bundle.code);
  project.provide('temporalAddress', server.address);
  project.provide('workflowBundlePath', bundlePath);
  return async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  };
}

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: console.warn, error: console.error, log: noop };

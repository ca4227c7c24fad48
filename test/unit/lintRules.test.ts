// The import rules in eslint.config.js are what keeps Node built-ins out of workflow code and npm
// packages out of archive_command: each must be able to fail, and must let through what is allowed.
import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const restricted = '@typescript-eslint/no-restricted-imports';
let eslint: ESLint;

/** The rule ids ESLint reports for `code` as if it were the file at `path` (relative to the repository). */
async function findings(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(`${code}\n`, { filePath: `${root}${path}` });
  return result!.messages.map((m) => m.ruleId ?? m.message);
}

beforeAll(() => {
  eslint = new ESLint({ cwd: root });
});

const workflow = 'src/workflows/lintProbe.ts';
const archive = 'src/archive/lintProbe.ts';
const host = 'src/host/lintProbe.ts';
const lib = 'src/lib/lintProbe.ts';

describe('import rules', () => {
  // Re-exports, so that the probe has no unused names; the rules treat them as imports.
  it.each([
    [workflow, "export { readFile } from 'node:fs/promises';"],
    [workflow, "export { Client } from 'pg';"],
    [workflow, "export { createActivities } from '../activities/index.js';"],
    [archive, "export { Client } from 'pg';"],
    [archive, "export type { Config } from '../config/index.js';"],
    [archive, "export { createActivities } from '../activities/index.js';"],
    [host, "export { execa } from 'execa';"],
    [host, "export type { Config } from '../config/index.js';"],
    [lib, "export { readFile } from 'node:fs';"],
    [lib, "export { readFile } from 'node:fs/promises';"],
    [lib, "export { spawn } from 'node:child_process';"],
    [lib, "export { createServer } from 'node:net';"],
    [lib, "export { execa } from 'execa';"],
    ['src/storage/lintProbe.ts', "export { createActivities } from '../activities/index.js';"],
    ['src/postgres/lintProbe.ts', "export { runCli } from '../cli/program.js';"],
    ['src/stream/lintProbe.ts', "export { hostQueue } from '../worker/worker.js';"],
    ['src/config/lintProbe.ts', "export { fullBackup } from '../workflows/fullBackup.js';"],
    ['src/stream/lintProbe.ts', "export { openRepository } from '../storage/clusterRepository.js';"],
    ['src/postgres/lintProbe.ts', "export { openRepository } from '../storage/clusterRepository.js';"],
    ['src/config/lintProbe.ts', "export { startTool } from '../stream/processes.js';"],
    [archive, "export { createActivities } from './../activities/index.js';"],
    [workflow, "export { createActivities } from './../activities/index.js';"],
  ])('%s may not: %s', async (file, code) => {
    expect(await findings(file, code)).toEqual([restricted]);
  });

  it.each([
    [workflow, "export { proxyActivities } from '@temporalio/workflow';"],
    [workflow, "export { isWalFileName } from '../lib/wal.js';"],
    [workflow, "export { progressQuery } from './messages.js';"],
    [workflow, "export type { Activities } from '../activities/index.js';"],
    [workflow, "export { type Config } from '../config/index.js';"],
    [archive, "export { readFile } from 'node:fs/promises';"],
    [archive, "export { isWalFileName } from '../lib/wal.js';"],
    [archive, "export { writeFileAtomic } from '../host/atomicFile.js';"],
    [host, "export { PARTIAL_SUFFIX } from '../lib/layout.js';"],
    [lib, "export { createHash } from 'node:crypto';"],
    [lib, "export { z } from 'zod';"],
    [lib, "export { ApplicationFailure } from '@temporalio/common';"],
    [lib, "export type { Config } from '../config/index.js';"],
    ['src/storage/lintProbe.ts', "export { writeFileAtomic } from '../host/atomicFile.js';"],
    ['src/postgres/lintProbe.ts', "export { startTool } from '../stream/processes.js';"],
  ])('%s may: %s', async (file, code) => {
    expect(await findings(file, code)).toEqual([]);
  });

  it('refuses a source file over 300 lines (split it by concern)', async () => {
    const long = Array.from({ length: 301 }, (_, i) => `export const v${i} = ${i};`).join('\n');
    expect(await findings('src/lib/lintProbe.ts', long)).toContain('max-lines');
    expect(await findings('src/lib/lintProbe.ts', long.split('\n').slice(0, 299).join('\n'))).toEqual([]);
  });

  it('refuses an import cycle in src/ (pushAsync.ts loads push.ts, so push.ts may not load it)', async () => {
    expect(await findings('src/archive/push.ts', "export { runPusher } from './pushAsync.js';")).toContain(
      'import-x/no-cycle',
    );
  });
});

// The Temporal UI's page for a restore waiting at approve, read in headless Chromium by
// `npm run ui-check` (scripts/ui-check.ts): it shows the waiting message, what approving does and how
// to answer. The script starts its own dev server with the UI; it fails naming what the page lacks.
import { join } from 'node:path';
import { execa } from 'execa';
import { expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');

it('the UI page of a restore waiting at approve says so, in a real browser', async () => {
  const run = await execa('npx', ['tsx', 'scripts/ui-check.ts'], { cwd: root, reject: false, timeout: 240_000 });
  expect(run.stderr.split('\n').filter((l) => l.startsWith('ui-check:'))).toEqual([]);
  expect(run.exitCode, run.stderr.slice(-3000)).toBe(0);
  expect(run.stdout).toContain('ui-check: the UI page of a restore waiting at approve shows "Waiting for approval"');
}, 300_000);

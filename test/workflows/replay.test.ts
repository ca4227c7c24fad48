// Every recorded history (test/histories/*.json) replays on today's workflow code: a change that
// would break running workflows (another command order, a step added without patched()) fails here.
// The histories cover every workflow kind the workers register and every patch the workflows
// take. Re-record them after a deliberate change: docs/development.md.
import { readdir, readFile } from 'node:fs/promises';
import { Worker } from '@temporalio/worker';
import { expect, it } from 'vitest';
import { historyFiles, readHistory, workflowTypeOf } from '../helpers/histories.js';
import { workflowBundle } from '../helpers/temporal.js';

const WORKFLOWS = new URL('../../src/workflows/', import.meta.url);

it('every recorded history replays on the current workflow bundle', async () => {
  const files = await historyFiles();
  const histories = await Promise.all(
    files.map(async (file) => ({ workflowId: file, history: await readHistory(file) })),
  );
  const failed: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: workflowBundle() }, histories)) {
    if (result.error) failed.push(`${result.workflowId}: ${result.error.name}: ${result.error.message}`);
  }
  expect(failed).toEqual([]);
  expect(files.length).toBeGreaterThanOrEqual(20);
});

it('the histories cover every workflow kind pgwarden registers', async () => {
  // The workflows are the async functions exported by the files src/workflows/index.ts re-exports (messages.ts holds helpers).
  const index = await readFile(new URL('index.ts', WORKFLOWS), 'utf8');
  const files = [...index.matchAll(/from '\.\/(\w+)\.js'/g)].map((m) => m[1]!).filter((f) => f !== 'messages');
  const kinds = new Set<string>();
  for (const file of files) {
    const source = await readFile(new URL(`${file}.ts`, WORKFLOWS), 'utf8');
    for (const m of source.matchAll(/^export async function (\w+)\(/gm)) kinds.add(m[1]!);
  }
  const recorded = new Set(
    (await Promise.all((await historyFiles()).map(async (f) => workflowTypeOf(await readHistory(f))))).filter(Boolean),
  );
  expect(kinds.size).toBeGreaterThanOrEqual(10);
  expect([...kinds].filter((k) => !recorded.has(k))).toEqual([]);
});

it('the histories take every patch the workflow code checks, and hold an approval signal and child runs', async () => {
  const patches = new Set<string>();
  for (const file of (await readdir(WORKFLOWS)).filter((f) => f.endsWith('.ts'))) {
    const source = await readFile(new URL(file, WORKFLOWS), 'utf8');
    for (const m of source.matchAll(/patched\('([^']+)'\)/g)) patches.add(m[1]!);
  }
  const seen = new Set<string>();
  const events = (await Promise.all((await historyFiles()).map(readHistory))).flatMap((h) => h.events ?? []);
  for (const e of events) {
    const data = e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0]?.data;
    if (data) seen.add((JSON.parse(Buffer.from(data).toString('utf8')) as { id: string }).id);
  }
  expect(patches.size).toBeGreaterThanOrEqual(10);
  expect([...patches].filter((p) => !seen.has(p))).toEqual([]);
  expect(events.some((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'approve')).toBe(true);
  expect(events.some((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'reject')).toBe(true);
  expect(events.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)).toBe(true);
});

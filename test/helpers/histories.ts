// Recorded workflow histories (test/histories/*.json), in the JSON `temporal workflow show -o json`
// prints. The workflow tests write them when PGWARDEN_RECORD_HISTORIES=1; test/workflows/replay.test.ts
// replays every one on today's workflow code.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { temporal } from '@temporalio/proto';
import type { WorkflowHandle } from '@temporalio/client';

type History = temporal.api.history.v1.IHistory;

export const HISTORIES_DIR = new URL('../histories/', import.meta.url);

/**
 * The SDK's own historyFromJSON fails here ("type must be a Type": @temporalio/common parses with
 * its own copy of protobufjs), so this uses the copy the History type comes from.
 */
function protojson(): {
  fromJson: (type: unknown, json: unknown) => History;
  toJson: (type: unknown, message: History) => unknown;
} {
  const fromProto = createRequire(createRequire(import.meta.url).resolve('@temporalio/proto'));
  return fromProto('protobufjs/ext/protojson') as ReturnType<typeof protojson>;
}

export function historyFromCliJson(json: unknown): History {
  return protojson().fromJson(temporal.api.history.v1.History, json);
}

export async function readHistory(file: string): Promise<History> {
  return historyFromCliJson(JSON.parse(await readFile(new URL(file, HISTORIES_DIR), 'utf8')));
}

/** Every recorded history file name, sorted. */
export async function historyFiles(): Promise<string[]> {
  return (await readdir(HISTORIES_DIR)).filter((f) => f.endsWith('.json')).sort();
}

/** The workflow type a history ran (its first event). */
export function workflowTypeOf(history: History): string | undefined {
  return history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? undefined;
}

/**
 * With PGWARDEN_RECORD_HISTORIES=1, writes the finished run's history as test/histories/<name>.json
 * (re-recording after a deliberate workflow change); otherwise does nothing.
 */
export async function recordHistory(handle: WorkflowHandle, name: string): Promise<void> {
  if (process.env.PGWARDEN_RECORD_HISTORIES !== '1') return;
  const json = protojson().toJson(temporal.api.history.v1.History, await handle.fetchHistory());
  await mkdir(HISTORIES_DIR, { recursive: true });
  await writeFile(new URL(`${name}.json`, HISTORIES_DIR), `${JSON.stringify(json, null, 1)}\n`);
}

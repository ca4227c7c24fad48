// Temporal's client for the commands, loaded only when one of them runs: every pgwarden start loads
// the command files, wal-get (once per WAL file) included, and must not pay for Temporal's modules.
import type { WorkflowHandle } from '@temporalio/client';
import type { Config } from '../config/index.js';

export async function connectClient(cfg: Config) {
  return (await import('./client.js')).connectClient(cfg);
}

export async function startRun(...args: Parameters<typeof import('./client.js').startRun>) {
  return (await import('./client.js')).startRun(...args);
}

export async function liveStatus(...args: Parameters<typeof import('./client.js').liveStatus>) {
  return (await import('./client.js')).liveStatus(...args);
}

export async function waitWithProgress<T>(handle: WorkflowHandle, quiet: boolean): Promise<T> {
  return (await import('./progress.js')).waitWithProgress<T>(handle, quiet);
}

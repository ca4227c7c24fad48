// The worker's automatic heartbeat: every activity heartbeats while it runs, and the activity's own
// details (progress, or what a retry resumes from) are repeated, never overwritten with nothing.
import { Context, heartbeat } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { autoHeartbeat } from '../../src/worker/autoHeartbeat.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Until `done()` (timers run late on a loaded machine, but they run), at most 10 s. */
async function until(done: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 10_000; !done() && Date.now() < deadline;) await sleep(10);
}

function environment(heartbeatDetails?: unknown) {
  const env = new MockActivityEnvironment({ heartbeatDetails }, { interceptors: [autoHeartbeat(20)] });
  const beats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(d));
  return { env, beats };
}

describe('autoHeartbeat', () => {
  it('heartbeats an activity that never does, only while it runs', async () => {
    const { env, beats } = environment();
    expect(await env.run(async () => (await until(() => beats.length >= 4), 'done'))).toBe('done');
    expect(beats.length).toBeGreaterThanOrEqual(4);
    expect(beats.every((b) => b === undefined)).toBe(true);
    const after = beats.length;
    await sleep(100);
    expect(beats.length).toBe(after); // stopped with the activity
  });

  it('repeats the details the activity sent last, whichever way it sent them', async () => {
    const { env, beats } = environment();
    await env.run(async () => {
      Context.current().heartbeat({ phase: 'restore', bytes: 1 });
      const first = beats.length;
      await until(() => beats.length >= first + 3);
      heartbeat({ phase: 'restore', bytes: 2 });
      const second = beats.length;
      await until(() => beats.length >= second + 3);
    });
    const own = beats.indexOf(beats.find((b) => (b as { bytes?: number })?.bytes === 2));
    expect(own).toBeGreaterThan(0);
    expect(beats.slice(1, own).every((b) => (b as { bytes: number }).bytes === 1)).toBe(true);
    expect(beats.slice(own).every((b) => (b as { bytes: number }).bytes === 2)).toBe(true);
    expect(beats.length - own).toBeGreaterThanOrEqual(3);
  });

  it("keeps the previous attempt's details until this attempt sends its own", async () => {
    const { env, beats } = environment({ phase: 'stage-wal', walFiles: 40 });
    await env.run(async () => until(() => beats.length >= 2));
    expect(beats.length).toBeGreaterThanOrEqual(2);
    expect(beats.every((b) => (b as { walFiles: number }).walFiles === 40)).toBe(true);
  });

  it('stops when the activity fails', async () => {
    const { env, beats } = environment();
    await expect(env.run(async () => (await sleep(50), Promise.reject(new Error('boom'))))).rejects.toThrow('boom');
    const after = beats.length;
    await sleep(100);
    expect(beats.length).toBe(after);
  });
});

// Following a pointInTimeRecovery run from a test: wait until its `progress` query names a step.
import type { WorkflowHandle } from '@temporalio/client';
import type { Progress } from '../../src/workflows/messages.js';

export async function waitForStep(handle: WorkflowHandle, step: string, timeoutMs = 120_000): Promise<Progress> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await handle.query<Progress>('progress');
    if (p.step === step) return p;
    if (Date.now() > deadline) throw new Error(`never reached ${step} (at ${p.step})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

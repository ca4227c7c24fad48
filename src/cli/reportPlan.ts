// What `restore` and `pitr` print when started without --wait: the run's plan, once it holds.
import type { WorkflowHandle } from '@temporalio/client';
import { approvalOf } from './format.js';
import { outcomeOf } from './runReport.js';

/**
 * `restore` / `pitr` without --wait: returns once the run's plan holds, saying what it waits for; a
 * run that fails in its plan (a backup id that does not exist, a target the WAL does not reach)
 * throws its error, so the command exits non-zero naming it.
 */
export async function reportPlan(handle: WorkflowHandle, json: boolean, approval: boolean): Promise<void> {
  const { waitPastPlan } = await import('./progress.js');
  const { workflowId } = handle;
  const planned = await waitPastPlan(handle);
  if (planned.state === 'ended') {
    const outcome = outcomeOf('COMPLETED', planned.result)!;
    process.exitCode = outcome.exitCode;
    return void console.log(json ? JSON.stringify(planned.result) : `  ${outcome.text}`);
  }
  if (json)
    return void console.log(JSON.stringify({ workflowId, step: planned.state === 'planned' ? planned.step : 'plan' }));
  if (planned.state === 'planning')
    return void console.log(`  ${planned.why}; follow it with: pgwarden status ${workflowId}`);
  if (planned.step === 'approve') {
    const { what } = approvalOf(planned.detail, workflowId);
    if (what) console.log(`  would: ${what}`);
    console.log(
      `  it waits for approval: pgwarden approve ${workflowId} --approver NAME --reason TEXT   (or: pgwarden reject ...)`,
    );
  } else {
    console.log(
      `  planned; now at ${planned.step}${planned.detail ? ` (${planned.detail})` : ''}${approval ? ', then it waits for approval' : ''}; follow it with: pgwarden status ${workflowId}`,
    );
  }
}

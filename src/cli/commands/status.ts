// `pgwarden status <workflowId>`: where one run is (its step, its running activity's heartbeat, and
// at an approval what would be done and how to approve). Temporal's modules load only when it runs.
import type { Command } from 'commander';
import type { WorkflowHandle } from '@temporalio/client';
import type { Config } from '../../config/index.js';
import { notFoundAsUserError, QUERY_TIMEOUT_MS, statusReport } from '../runReport.js';

export function registerStatusCommand(program: Command, config: () => Config): void {
  program
    .command('status <workflowId>')
    .description(
      "where a run is: status, step, the running activity's progress; at an approval, what would be done and how to approve",
    )
    .option('--json', 'print the status as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  pgwarden status pgwarden/main/app/full/20261122T020000Z\n  pgwarden status pgwarden/main/pitr/20261122T143500Z --json\n\nFind workflow ids with `pgwarden list`.',
    )
    .action(async (workflowId: string, opts: { json?: boolean }) => {
      const cfg = config();
      const { connectClient, liveStatus } = await import('../client.js');
      const client = await connectClient(cfg);
      const handle = client.workflow.getHandle(workflowId);
      const live = await liveStatus(handle, { queryTimeoutMs: QUERY_TIMEOUT_MS }).catch(
        notFoundAsUserError(workflowId),
      );
      const closed = live.status !== 'RUNNING' ? await closedRun(handle) : {};
      const approvalDeadline =
        live.status === 'RUNNING' && live.progress?.step === 'approve'
          ? await approvalDeadlineOf(handle, live.progress.since)
          : undefined;
      const report = statusReport(workflowId, live, Date.now(), { ...closed, approvalDeadline });
      if (opts.json) console.log(JSON.stringify(report.json));
      else for (const line of report.lines) console.log(line);
      process.exitCode = report.exitCode;
    });
}

/** A closed run's result, or why it failed (its error, one line); neither when it cannot be read quickly. */
async function closedRun(handle: WorkflowHandle): Promise<{ result?: unknown; failure?: string }> {
  const { oneLine } = await import('../errors.js');
  try {
    return { result: await handle.client.connection.withDeadline(Date.now() + 5000, () => handle.result()) };
  } catch (err) {
    return { failure: oneLine(err).replace(/^workflow failed: /, '') };
  }
}

/**
 * When a run waiting at `approve` stops waiting: the step's start plus the `approvalTimeout` of the
 * run's input (read from its first history event); undefined when the input does not say.
 */
async function approvalDeadlineOf(handle: WorkflowHandle, since: string): Promise<Date | undefined> {
  try {
    const { defaultPayloadConverter, msToNumber } = await import('@temporalio/common');
    const { client } = handle;
    const page = await client.connection.withDeadline(Date.now() + 3000, () =>
      client.workflowService.getWorkflowExecutionHistory({
        namespace: client.options.namespace,
        execution: { workflowId: handle.workflowId },
        maximumPageSize: 1,
      }),
    );
    const payload = page.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    const input = payload
      ? defaultPayloadConverter.fromPayload<{ approvalTimeout?: string }>(payload as never)
      : undefined;
    const start = Date.parse(since);
    if (!input?.approvalTimeout || !Number.isFinite(start)) return undefined;
    return new Date(start + msToNumber(input.approvalTimeout as never));
  } catch {
    return undefined;
  }
}

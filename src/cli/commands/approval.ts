// `pgwarden approve|reject <workflowId>`: answer a restore or recovery waiting at its approval step.
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';
import { usage, UserError } from '../errors.js';
import { statusWord } from '../format.js';
import { connectClient, liveStatus } from '../lazyClient.js';
import { notFoundAsUserError } from '../runReport.js';

export function registerApprovalCommands(program: Command, config: () => Config): void {
  for (const [name, signal] of [
    ['approve', 'approve'],
    ['reject', 'reject'],
  ] as const) {
    program
      .command(`${name} <workflowId>`)
      .description(`${name} a restore or recovery waiting at its approval step (recorded with who and why)`)
      .requiredOption('--approver <name>', 'who decides')
      .requiredOption('--reason <text>', 'why (a ticket, an incident)')
      .addHelpText(
        'after',
        `\nExample:\n  pgwarden ${name} pgwarden/main/app/restore/20261122T020000Z --approver alice --reason "INC-42"`,
      )
      .action(async (workflowId: string, opts: { approver: string; reason: string }) => {
        if (!opts.approver.trim() || !opts.reason.trim()) throw usage('--approver and --reason must not be empty');
        const client = await connectClient(config());
        const handle = client.workflow.getHandle(workflowId);
        const live = await liveStatus(handle, { queryTimeoutMs: 5000 }).catch(notFoundAsUserError(workflowId));
        const running = live.status === 'RUNNING';
        const step = live.progress?.step;
        if (!running || step !== 'approve') {
          if (step)
            throw new UserError(
              `${workflowId} is not waiting for approval (${running || step !== 'approve' ? `step: ${step}` : statusWord(live.status)})`,
            );
          if (!running) throw new UserError(`${workflowId} is ${statusWord(live.status)}, not waiting for approval`);
          throw new UserError(
            `cannot tell whether ${workflowId} waits for approval: no worker answered its progress query (is a worker running on "${live.taskQueue}"?)`,
          );
        }
        await handle.signal(signal, { approver: opts.approver, reason: opts.reason });
        console.log(
          `${name === 'approve' ? 'approved' : 'rejected'} ${workflowId} as ${opts.approver}: ${opts.reason}`,
        );
      });
  }
}

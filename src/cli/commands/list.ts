// `pgwarden list`: recent runs, newest first. Temporal's modules load only when it runs.
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { WorkflowExecutionInfo } from '@temporalio/client';
import type { Config } from '../../config/index.js';
import {
  kindOfWorkflow,
  listQuery,
  matchesById,
  RUN_KINDS,
  RUN_STATUSES,
  type ListFilter,
  type RunKind,
} from '../../lib/visibility.js';
import { runTable, statusWord, type RunRow } from '../format.js';

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError('expected a whole number above 0.');
  return n;
}

/** A run as `list --json` prints it. */
export interface RunSummary {
  workflowId: string;
  runId: string;
  type: string;
  kind?: RunKind;
  status: string;
  cluster?: string;
  database?: string;
  startTime?: string;
  closeTime?: string;
  seconds?: number;
}

function summaryOf(w: WorkflowExecutionInfo, now: number): RunSummary {
  const memo = (w.memo ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return {
    workflowId: w.workflowId,
    runId: w.runId,
    type: w.type,
    kind: kindOfWorkflow(w.type),
    status: statusWord(w.status.name),
    cluster: str(memo.cluster),
    database: str(memo.database),
    startTime: w.startTime?.toISOString(),
    closeTime: w.closeTime?.toISOString(),
    seconds: w.startTime ? Math.max(0, ((w.closeTime?.getTime() ?? now) - w.startTime.getTime()) / 1000) : undefined,
  };
}

export function registerListCommand(program: Command, config: () => Config): void {
  program
    .command('list')
    .description('recent pgwarden runs, newest first: workflow id, kind, status, start time (local), duration')
    .option('--cluster <name>', 'only runs of this cluster')
    .option('--database <name>', 'only runs of this database')
    .addOption(new Option('--kind <kind>', 'only runs of this kind').choices(RUN_KINDS))
    .addOption(new Option('--status <status>', 'only runs in this state').choices(RUN_STATUSES))
    .option('--limit <n>', 'at most this many runs', positiveInteger, 20)
    .option('--json', 'print the runs as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  pgwarden list\n  pgwarden list --cluster main --kind full --limit 5\n  pgwarden list --status running\n  pgwarden list --cluster main --database app --status failed --json',
    )
    .action(
      async (opts: {
        cluster?: string;
        database?: string;
        kind?: RunKind;
        status?: string;
        limit: number;
        json?: boolean;
      }) => {
        const cfg = config();
        const { connectClient, hasSearchAttributes } = await import('../client.js');
        const client = await connectClient(cfg);
        const filter: ListFilter = {
          cluster: opts.cluster,
          database: opts.database,
          kind: opts.kind,
          status: opts.status,
        };
        // Without pgwarden's search attributes the server filters by kind and status only; the
        // cluster and database are read from the workflow ids.
        const server = await hasSearchAttributes(client);
        const byId = !server && !!(filter.cluster || filter.database);
        const query = listQuery(filter, server);
        const runs: WorkflowExecutionInfo[] = [];
        for await (const w of client.workflow.list({ query, pageSize: byId ? 200 : Math.min(opts.limit, 1000) })) {
          if (byId && !matchesById(w.workflowId, filter)) continue;
          runs.push(w);
          if (runs.length >= opts.limit) break;
        }
        runs.sort((a, b) => (b.startTime?.getTime() ?? 0) - (a.startTime?.getTime() ?? 0));
        const now = Date.now();
        if (opts.json) return void console.log(JSON.stringify(runs.map((w) => summaryOf(w, now))));
        if (!runs.length) {
          const unknown =
            opts.cluster && !(opts.cluster in cfg.clusters) ? ` (cluster "${opts.cluster}" is not in the config)` : '';
          return void console.log(`no runs${unknown}`);
        }
        const rows: RunRow[] = runs.map((w) => ({
          workflowId: w.workflowId,
          kind: kindOfWorkflow(w.type) ?? w.type,
          status: statusWord(w.status.name),
          startTime: w.startTime,
          closeTime: w.closeTime,
        }));
        for (const line of runTable(rows, now)) console.log(line);
      },
    );
}

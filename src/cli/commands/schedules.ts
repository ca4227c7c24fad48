// `pgwarden schedules ...`: the config's jobs as Temporal Schedules. Temporal's modules load only
// when a command runs (this file is imported by every pgwarden start, wal-get included).
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';
import { UserError } from '../errors.js';
import type { ApplyReport } from '../scheduleOps.js';

const ops = () => import('../scheduleOps.js');
const connect = async (config: Config) => (await import('../client.js')).connectClient(config);

export function registerScheduleCommands(program: Command, config: () => Config): void {
  const schedules = program
    .command('schedules')
    .description('Temporal Schedules for every configured job (they replace crontab)')
    .addHelpText(
      'after',
      '\nExamples:\n  pgwarden schedules apply --dry-run\n  pgwarden schedules list\n  pgwarden schedules trigger pgwarden/main/all/full-daily --wait',
    );
  const client = () => connect(config());
  const handleOf = async (id: string) => {
    const c = await client();
    return { client: c, handle: await (await ops()).existingSchedule(c, id) };
  };

  schedules
    .command('apply')
    .description(
      'create or update one schedule per configured job; remove those of the configured clusters the config no longer has',
    )
    .option('--dry-run', 'show what would change, change nothing')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', '\nExamples:\n  pgwarden schedules apply --dry-run\n  pgwarden schedules apply')
    .action(async (opts: { dryRun?: boolean; json?: boolean }) => {
      const cfg = config();
      let report: ApplyReport;
      try {
        report = await (await ops()).applySchedules(await client(), cfg, { dryRun: opts.dryRun });
      } catch (err) {
        if (err instanceof Error && /^clusters\./.test(err.message)) throw new UserError(err.message);
        throw err;
      }
      if (opts.json) return void console.log(JSON.stringify(report));
      const verb = opts.dryRun ? 'would be ' : '';
      for (const [what, ids] of Object.entries(report))
        for (const id of ids as string[]) console.log(`${verb}${what.padEnd(9)} ${id}`);
      console.log(
        `${report.created.length} ${verb}created, ${report.updated.length} ${verb}updated, ${report.unchanged.length} unchanged, ${report.deleted.length} ${verb}deleted`,
      );
    });

  schedules
    .command('list')
    .description("each schedule of the configured clusters: when it runs, its next runs, its last run's result")
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExample:\n  pgwarden schedules list')
    .action(async (opts: { json?: boolean }) => {
      const rows = await (await ops()).listSchedules(await client(), config());
      if (opts.json) return void console.log(JSON.stringify(rows));
      if (rows.length === 0) return void console.log('no schedules: run `pgwarden schedules apply`');
      const { scheduleLines } = await import('../format.js');
      for (const line of scheduleLines(rows, Date.now())) console.log(line);
    });

  schedules
    .command('delete [ids...]')
    .description(
      'delete the named schedules, or with --all every schedule of the configured clusters (runs in progress go on)',
    )
    .option('--all', 'every schedule of the configured clusters')
    .addHelpText(
      'after',
      '\nExamples:\n  pgwarden schedules delete pgwarden/main/base-weekly\n  pgwarden schedules delete --all',
    )
    .action(async (ids: string[], opts: { all?: boolean }) => {
      const c = await client();
      const targets = opts.all ? await (await ops()).existingScheduleIds(c, config()) : ids;
      if (targets.length === 0)
        throw new UserError(opts.all ? 'no schedules to delete' : 'name the schedules to delete, or give --all');
      for (const id of targets) {
        await (await handleOf(id)).handle.delete();
        console.log(`deleted ${id}`);
      }
    });

  schedules
    .command('trigger <id>')
    .description('start a run of a schedule now')
    .option('--wait', 'wait for the run to finish, showing progress')
    .option('--json', 'print the workflow id (and with --wait the result) as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  pgwarden schedules trigger pgwarden/main/all/full-daily --wait\n  pgwarden schedules trigger pgwarden/main/app/full-daily   (with "databases": ["app"] in the cluster)',
    )
    .action(async (id: string, opts: { wait?: boolean; json?: boolean }) => {
      const { client: c } = await handleOf(id);
      const workflowId = await (await ops()).triggerSchedule(c, id);
      if (!opts.json) console.log(`started ${workflowId}`);
      if (!opts.wait) return void (opts.json && console.log(JSON.stringify({ workflowId })));
      const { waitWithProgress } = await import('../progress.js');
      const result = await waitWithProgress<unknown>(c.workflow.getHandle(workflowId), !!opts.json);
      console.log(opts.json ? JSON.stringify({ workflowId, result }) : `completed ${workflowId}`);
    });

  for (const what of ['pause', 'unpause'] as const) {
    schedules
      .command(`${what} <id>`)
      .description(
        what === 'pause'
          ? 'stop starting runs (runs in progress go on); `schedules apply` keeps it paused'
          : 'start runs again',
      )
      .option('--reason <text>', 'kept as the schedule note, shown in the UI and `schedules list`')
      .addHelpText(
        'after',
        `\nExample:\n  pgwarden schedules ${what} pgwarden/main/base-weekly --reason "INC-42: disk replacement"`,
      )
      .action(async (id: string, opts: { reason?: string }) => {
        const { handle } = await handleOf(id);
        const note = opts.reason ?? `${what}d with pgwarden`;
        await (what === 'pause' ? handle.pause(note) : handle.unpause(note));
        console.log(`${what}d ${id}`);
      });
  }
}

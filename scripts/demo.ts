// npm run demo — pgwarden end to end on one machine, with no configuration: the Temporal dev server
// (with its UI), a scratch PostgreSQL 15 archiving WAL into the pgwarden repository, versitygw as
// the offsite S3 store, an OpenPGP key and pgwarden's real workers; then fullBackup → verifyBackup
// → offsiteSync → baseBackup → an "accident" → pointInTimeRecovery in place (approved as "demo")
// → the check that the accident is undone. Each step is timed, a summary table ends the run, and
// everything is stopped and removed: exit 0, or non-zero with one line saying what failed.
//
// npm run dev (`--stay`) — the same start-up, then stays up until Ctrl-C for exploring the UI.
// `npm run dev -- --port P --ui-port U --metrics-port M` chooses the Temporal server's, its UI's and
// pgwarden's metrics ports (default: free ones); a taken port fails at once, in one line naming it.
//
// PGWARDEN_DEMO_TEMPORAL_ADDRESS=host:port uses that Temporal server (tests), see scripts/demo/stack.ts.
import { parseArgs } from 'node:util';
import { formatDuration } from '../src/cli/format.js';
import { assertPortsFree, devPorts } from '../src/worker/devServer.js';
import { freePort } from '../test/helpers/ports.js';
import { Interrupted, watchForAbort } from './demo/abort.js';
import { startStack, type DemoStack, type StackPorts } from './demo/stack.js';
import { explain, runDemo, type Row } from './demo/steps.js';

const t0 = Date.now();
const say = (line: string) => console.log(`[${formatDuration((Date.now() - t0) / 1000).padStart(6)}] ${line}`);

function printSummary(rows: Row[]): void {
  const w = Math.max('workflow id'.length, ...rows.map((r) => r.workflowId.length));
  const s = Math.max(...rows.map((r) => r.step.length));
  console.log('\nSummary');
  console.log(`  ${'step'.padEnd(s)}  ${'workflow id'.padEnd(w)}  ${'seconds'.padStart(7)}  result`);
  for (const r of rows)
    console.log(`  ${r.step.padEnd(s)}  ${r.workflowId.padEnd(w)}  ${r.seconds.toFixed(1).padStart(7)}  ${r.result}`);
  console.log('');
}

function printTryThis(stack: DemoStack): void {
  const pitr = `pgwarden/main/pitr/<id>`;
  console.log(
    [
      '',
      `Temporal:     ${stack.temporalAddress}`,
      `Temporal UI:  ${stack.uiAddress ?? '(not started: PGWARDEN_DEMO_TEMPORAL_ADDRESS is set)'}`,
      `Metrics:      ${stack.metricsUrl ?? '(off)'}`,
      `Config file:  ${stack.configFile}`,
      '',
      'Try, in another shell (the workers with their secrets run in this process):',
      '  cd ' + process.cwd() + ' && source scripts/env.sh',
      `  export PGWARDEN_CONFIG=${stack.configFile} TEMPORAL_ADDRESS=${stack.temporalAddress}`,
      '  pgwarden backup --cluster main --database app --wait',
      '  pgwarden base-backup --cluster main --wait',
      '  pgwarden offsite sync --cluster main --wait',
      '  pgwarden pitr --cluster main --latest --mode rehearsal --wait',
      `  pgwarden pitr --cluster main --latest            # then: pgwarden approve ${pitr} --approver you --reason test`,
      '  pgwarden list',
      '  pgwarden backups --cluster main',
      '  pgwarden schedules apply && pgwarden schedules list',
      `  temporal workflow list --address ${stack.temporalAddress} --query "PgwardenCluster='main'"`,
      `  temporal workflow query --address ${stack.temporalAddress} --type progress --workflow-id ${pitr}`,
      '',
      'Ctrl-C stops everything and removes the scratch cluster, the repository and the S3 data.',
    ].join('\n'),
  );
}

const stay = process.argv.includes('--stay');

/** The ports from the flags (free ones where not given), refused before anything starts when taken. */
async function choosePorts(): Promise<StackPorts> {
  const { values: flags } = parseArgs({
    options: {
      stay: { type: 'boolean' },
      port: { type: 'string' },
      'ui-port': { type: 'string' },
      'metrics-port': { type: 'string' },
    },
  });
  if (process.env.PGWARDEN_DEMO_TEMPORAL_ADDRESS) return {};
  // Free ports drawn one by one may repeat: each is drawn until it differs from the others.
  const drawn = new Set<string>(
    [flags.port, flags['ui-port'], flags['metrics-port']].filter((v): v is string => v !== undefined),
  );
  const flag = async (value: string | undefined) => {
    if (value !== undefined) return value;
    for (;;) {
      const p = String(await freePort());
      if (!drawn.has(p)) return (drawn.add(p), p);
    }
  };
  const ports = devPorts({
    port: await flag(flags.port),
    uiPort: await flag(flags['ui-port']),
    metricsPort: stay || flags['metrics-port'] ? await flag(flags['metrics-port']) : undefined,
  });
  await assertPortsFree(ports.uses);
  return ports;
}

async function main(): Promise<number> {
  const ports = await choosePorts();
  let stack: DemoStack | undefined;
  const { aborted, cleaningUp } = watchForAbort(explain);
  const starting = startStack(say, ports);
  starting.catch(() => undefined);
  try {
    stack = await Promise.race([starting, aborted]);
    if (stack.uiAddress)
      say(`Temporal UI: ${stack.uiAddress}  (every run is there; filter with PgwardenCluster = "main")`);
    if (stay) {
      printTryThis(stack);
      await aborted.catch((err: unknown) => {
        if (!(err instanceof Interrupted)) throw err; // Ctrl-C is how `npm run dev` ends
      });
      return 0;
    }
    const rows = await Promise.race([runDemo(stack, say), aborted]);
    printSummary(rows);
    say(`every step succeeded in ${formatDuration((Date.now() - t0) / 1000)}`);
    return 0;
  } finally {
    cleaningUp();
    say('stopping the workers and servers, removing the scratch cluster and temporary files');
    // Interrupted during start-up: let it finish (or fail and clean up after itself), then stop it.
    stack ??= await starting.catch(() => undefined);
    await stack?.stop();
    say('cleaned up');
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const name = stay ? 'npm run dev' : 'demo';
    console.error(
      err instanceof Interrupted ? `${name}: ${err.message}, cleaned up` : `${name} failed: ${explain(err)}`,
    );
    process.exit(err instanceof Interrupted ? 130 : 1);
  },
);

// The `pgwarden` program (loaded by main.ts): start and watch procedures, run the worker and the
// dev stack. Temporal's modules load lazily: wal-get starts once per WAL file and must be quick.
import type { EventEmitter } from 'node:events';
import { Command, Option } from 'commander';
import { loadConfig, type Config } from '../config/index.js';
import { baseBackupWorkflowId, fullBackupWorkflowId, formatBackupId, isBackupId, offsiteWorkflowId, pitrWorkflowId, restoreDatabaseWorkflowId, verifyBackupWorkflowId } from '../lib/ids.js';
import type { OffsiteSyncInput, OffsiteSyncResult } from '../workflows/offsiteSync.js';
import type { RecoveryTarget } from '../lib/recovery.js';
import type { RecoveryMode } from '../activities/pitr/types.js';
import type { BaseBackupWorkflowInput, BaseBackupWorkflowResult } from '../workflows/baseBackup.js';
import type { PointInTimeRecoveryInput, PointInTimeRecoveryResult } from '../workflows/pointInTimeRecovery.js';
import type { WorkflowHandle } from '@temporalio/client';
import { registerWalCommands } from './wal.js';
import { registerClusterCommands } from './cluster.js';
import { registerScheduleCommands } from './schedules.js';
import { registerHealthCommands } from './health.js';
import { registerRetentionCommands } from './retention.js';
import { registerBackupsCommands } from './backups.js';
import { approvalOf, formatBytes, formatDuration, offsiteReportLines, statusWord } from './format.js';
import { commandPath, oneLineErrors, reportError, requireCluster, UserError } from './errors.js';
import { notFoundAsUserError, outcomeOf, registerRunCommands } from './runs.js';
import type { FullBackupInput, FullBackupResult } from '../workflows/fullBackup.js';
import type { RestoreDatabaseInput, RestoreDatabaseResult } from '../workflows/restoreDatabase.js';
import type { VerifyBackupInput, VerifyBackupResult } from '../workflows/verifyBackup.js';

const program = new Command('pgwarden')
  .description('PostgreSQL backup and disaster recovery as durable Temporal workflows')
  .option('-c, --config <file>', 'config file (default: $PGWARDEN_CONFIG or ./pgwarden.config.json)')
  .addHelpText(
    'after',
    '\nExamples:\n' +
      '  pgwarden backup --cluster main --database app --wait\n' +
      '  pgwarden list --cluster main --status running\n' +
      '  pgwarden status pgwarden/main/app/full/20261122T020000Z\n' +
      '  pgwarden restore --cluster main --database app --backup-id 20261122T020000Z\n' +
      '  pgwarden approve pgwarden/main/app/restore/20261122T020000Z --approver alice --reason "INC-42"\n' +
      "  pgwarden pitr --cluster main --target-time '2026-11-22 14:31:00+00' --wait\n" +
      '  pgwarden schedules apply\n' +
      '\nEach command has its own help with examples: pgwarden <command> --help',
  );

function config(): Config {
  return loadConfig(program.opts<{ config?: string }>().config);
}

// The command whose action runs, for the help a usage mistake points to.
let running: Command = program;
program.hook('preAction', (_program, action) => {
  running = action;
});

/** A mistake in how the running command was called: one line, with its help to read. */
function usage(message: string): UserError {
  return new UserError(message, commandPath(running));
}

program
  .command('worker')
  .description('run a worker on the shared queue `pgwarden` and this host\'s queue `pgwarden@<host>`')
  .addHelpText('after', '\nExample:\n  TEMPORAL_ADDRESS=temporal:7233 pgwarden worker --config /etc/pgwarden/pgwarden.config.json')
  .action(async () => {
    const cfg = config();
    const { connectWorker, runWorkers } = await import('../worker/worker.js');
    const connection = await connectWorker(cfg.temporal.address);
    try {
      await runWorkers({ config: cfg, connection });
    } finally {
      await connection.close();
    }
  });

program
  .command('dev')
  .description('start the Temporal dev server (with its web UI) and a worker, for trying pgwarden on one machine')
  .option('--port <port>', 'Temporal frontend port', '7233')
  .option('--ui-port <port>', 'web UI port', '8233')
  .option('--metrics-port <port>', "serve the worker's Prometheus metrics on this port (default: the config's metrics.port, else off)")
  .option('--db-file <file>', 'keep workflow history in this SQLite file', '.pgwarden-dev.sqlite')
  .addHelpText('after', '\nExamples:\n  pgwarden dev --config pgwarden.config.json\n  pgwarden dev --port 7234 --ui-port 8234 --metrics-port 9464 --db-file /tmp/pgwarden-dev.sqlite')
  .action(async (opts: { port: string; uiPort: string; metricsPort?: string; dbFile: string }) => {
    const cfg = config();
    const { NativeConnection } = await import('@temporalio/worker');
    const { runWorkers } = await import('../worker/worker.js');
    const { startDevServer, assertPortsFree, devPorts } = await import('../worker/devServer.js');
    const ports = devPorts(opts, cfg.metrics.port);
    // Every port is checked before anything starts: a taken one fails here, in one line naming it.
    await assertPortsFree(ports.uses);
    const server = await startDevServer({ port: ports.port, uiPort: ports.uiPort, dbFile: opts.dbFile });
    const metrics = !ports.metricsPort ? '' : `; metrics at http://${cfg.metrics.host}:${ports.metricsPort}/metrics`;
    console.log(`Temporal dev server at ${server.address}; UI at ${server.uiAddress}${metrics}`);
    const connection = await NativeConnection.connect({ address: server.address });
    try {
      const devConfig = { ...cfg, temporal: { ...cfg.temporal, address: server.address }, metrics: { ...cfg.metrics, port: ports.metricsPort } };
      await runWorkers({ config: devConfig, connection });
    } finally {
      await connection.close();
      await server.stop();
    }
  });

program
  .command('backup')
  .description('start a fullBackup (logical, pg_dump) of one database, or of all with --database "*"')
  .requiredOption('--cluster <name>', 'cluster name from the config')
  .requiredOption('--database <name>', 'database name, or "*" for every database')
  .option('--backup-id <id>', 'backup id (default: the start time, e.g. 20261122T020000Z)')
  .option('--verify', 'then verify it by restoring it into a temporary database (a child verifyBackup)')
  .option('--wait', 'wait for the result, showing progress')
  .addOption(new Option('--json', 'print the result as JSON'))
  .addHelpText('after', '\nExamples:\n  pgwarden backup --cluster main --database app --wait\n  pgwarden backup --cluster main --database app --verify --wait\n  pgwarden backup --cluster main --database "*"')
  .action(async (opts: { cluster: string; database: string; backupId?: string; verify?: boolean; wait?: boolean; json?: boolean }) => {
    const cfg = config();
    requireCluster(cfg, opts.cluster);
    if (opts.backupId && !isBackupId(opts.backupId)) throw new UserError(`--backup-id "${opts.backupId}" is not of the form 20261122T020000Z[-suffix]`);
    const backupId = opts.backupId ?? formatBackupId(new Date());
    const input: FullBackupInput = { cluster: opts.cluster, database: opts.database, backupId, ...(opts.verify ? { verify: true } : {}) };
    const client = await connectClient(cfg);
    const workflowId = fullBackupWorkflowId(opts.cluster, opts.database === '*' ? 'all' : opts.database, backupId);
    const handle = await startRun(client, cfg, { cluster: opts.cluster, database: opts.database, kind: 'full' }, { workflowId, args: [input] });
    if (!opts.json) console.log(`started fullBackup ${workflowId}`);
    if (!opts.wait) {
      if (opts.json) console.log(JSON.stringify({ workflowId }));
      return;
    }
    const result = await waitWithProgress<FullBackupResult>(handle, !!opts.json);
    if (opts.json) return void console.log(JSON.stringify(result));
    for (const b of result.backups) {
      console.log(
        `${b.cluster}/${b.database} ${b.backupId}: ${formatBytes(b.bytes)} stored, ` +
          `${b.tables} tables, ${b.rows} rows, ${formatDuration(b.seconds)}${b.reused ? ' (already committed)' : ''}\n  ${b.path}`,
      );
    }
    for (const v of result.verifications ?? []) for (const line of verifiedLines(v)) console.log(line);
  });

program
  .command('verify')
  .description('start a verifyBackup: restore a logical backup into a temporary database and compare it with its manifest (of one database, or of every database of the newest "*" backup)')
  .requiredOption('--cluster <name>', 'cluster name from the config')
  .requiredOption('--database <name>', 'database name, or "*" for every database of the newest "*" backup')
  .option('--backup-id <id>', 'backup to verify (default: the newest not verified yet, else the newest)')
  .option('--wait', 'wait for the result, showing progress')
  .addOption(new Option('--json', 'print the result as JSON'))
  .addHelpText('after', '\nExamples:\n  pgwarden verify --cluster main --database app --wait\n  pgwarden verify --cluster main --database app --backup-id 20261122T020000Z --wait\n  pgwarden verify --cluster main --database "*"')
  .action(async (opts: { cluster: string; database: string; backupId?: string; wait?: boolean; json?: boolean }) => {
    const cfg = config();
    requireCluster(cfg, opts.cluster);
    if (opts.backupId && !isBackupId(opts.backupId)) throw new UserError(`--backup-id "${opts.backupId}" is not of the form 20261122T020000Z[-suffix]`);
    if (opts.backupId && opts.database === '*') throw usage('--backup-id names one database\'s backup: not with --database "*"');
    const input: VerifyBackupInput = { cluster: opts.cluster, database: opts.database, ...(opts.backupId ? { backupId: opts.backupId } : {}) };
    const client = await connectClient(cfg);
    // Without --backup-id the run is named by its start time (the workflow picks the backup).
    const workflowId = verifyBackupWorkflowId(opts.cluster, opts.database === '*' ? 'all' : opts.database, opts.backupId ?? formatBackupId(new Date()));
    const handle = await startRun(client, cfg, { cluster: opts.cluster, database: opts.database, kind: 'verify' }, { workflowId, args: [input] });
    if (!opts.json) console.log(`started verifyBackup ${workflowId}`);
    if (!opts.wait) return void (opts.json && console.log(JSON.stringify({ workflowId })));
    const result = await waitWithProgress<VerifyBackupResult>(handle, !!opts.json);
    if (opts.json) return void console.log(JSON.stringify(result));
    for (const line of verifiedLines(result)) console.log(line);
  });

/** A verification's lines: one per database (the "*" run's children), restore time, tables, rows. */
function verifiedLines(v: VerifyBackupResult): string[] {
  if (v.databases?.length) return v.databases.flatMap(verifiedLines);
  return [`verified ${v.cluster}/${v.database} ${v.backupId}: restored in ${formatDuration(v.restoreSeconds)}, ${v.tables} tables, ${v.rows} rows as in its manifest`];
}

program
  .command('restore')
  .description('start a restoreDatabase: restore a logical backup over a database, after approval (the live one is kept renamed)')
  .requiredOption('--cluster <name>', 'cluster name from the config')
  .requiredOption('--database <name>', 'database to restore')
  .option('--backup-id <id>', 'backup to restore (default: the newest)')
  .option('--approval-timeout <duration>', 'how long to wait for approve/reject', '24 hours')
  .option('--reindex', 'REINDEX DATABASE after the restore')
  .option('--tables <names>', 'comma-separated: restore only these tables into <db>_restore_<id>_<run> and leave them there (no approval needed)')
  .option('--wait', 'wait for the result, showing progress')
  .addOption(new Option('--json', 'print the result as JSON'))
  .addHelpText('after', '\nExamples:\n  pgwarden restore --cluster main --database app --backup-id 20261122T020000Z\n  pgwarden status pgwarden/main/app/restore/20261122T020000Z\n  pgwarden approve pgwarden/main/app/restore/20261122T020000Z --approver alice --reason "INC-42"')
  .action(async (opts: { cluster: string; database: string; backupId?: string; approvalTimeout: string; reindex?: boolean; tables?: string; wait?: boolean; json?: boolean }) => {
    const cfg = config();
    requireCluster(cfg, opts.cluster);
    if (opts.backupId && !isBackupId(opts.backupId)) throw new UserError(`--backup-id "${opts.backupId}" is not of the form 20261122T020000Z[-suffix]`);
    const client = await connectClient(cfg);
    const workflowId = restoreDatabaseWorkflowId(opts.cluster, opts.database, opts.backupId ?? formatBackupId(new Date()));
    const tables = opts.tables?.split(',').map((t) => t.trim()).filter(Boolean);
    const input: RestoreDatabaseInput = { cluster: opts.cluster, database: opts.database, backupId: opts.backupId, approvalTimeout: opts.approvalTimeout, reindex: opts.reindex, tables };
    const handle = await startRun(client, cfg, { cluster: opts.cluster, database: opts.database, kind: 'restore' }, { workflowId, args: [input] });
    if (!opts.json) console.log(`started restoreDatabase ${workflowId}${tables?.length ? ` (tables ${tables.join(', ')}; no approval needed)` : ''}`);
    if (!opts.wait) return reportPlan(handle, !!opts.json, !tables?.length);
    const result = await waitWithProgress<RestoreDatabaseResult>(handle, !!opts.json);
    process.exitCode = outcomeOf('COMPLETED', result)!.exitCode; // 3 when rejected or nobody approved
    if (opts.json) return void console.log(JSON.stringify(result));
    console.log(
      result.outcome === 'restored'
        ? `restored ${opts.cluster}/${opts.database} from ${result.backupId}; ${result.previousDatabase ? `the previous database is kept as ${result.previousDatabase}` : 'there was no live database to keep'}`
        : result.outcome === 'tables-restored'
          ? `restored ${tables!.join(', ')} from ${result.backupId} into ${result.tablesDatabase}; copy back what you need`
          : `not restored: ${result.outcome}${result.decision ? ` by ${result.decision.approver} (${result.decision.reason})` : ''}`,
    );
  });

program
  .command('base-backup')
  .description('start a baseBackup (physical, pg_basebackup) of a cluster: the starting point of point-in-time recovery')
  .requiredOption('--cluster <name>', 'cluster name from the config')
  .option('--backup-id <id>', 'backup id (default: the start time, e.g. 20261122T030000Z)')
  .option('--wait', 'wait for the result, showing progress')
  .addOption(new Option('--json', 'print the result as JSON'))
  .addHelpText('after', '\nExample:\n  pgwarden base-backup --cluster main --wait')
  .action(async (opts: { cluster: string; backupId?: string; wait?: boolean; json?: boolean }) => {
    const cfg = config();
    requireCluster(cfg, opts.cluster);
    if (opts.backupId && !isBackupId(opts.backupId)) throw new UserError(`--backup-id "${opts.backupId}" is not of the form 20261122T020000Z[-suffix]`);
    const backupId = opts.backupId ?? formatBackupId(new Date());
    const input: BaseBackupWorkflowInput = { cluster: opts.cluster, backupId };
    const client = await connectClient(cfg);
    const workflowId = baseBackupWorkflowId(opts.cluster, backupId);
    const handle = await startRun(client, cfg, { cluster: opts.cluster, kind: 'base' }, { workflowId, args: [input] });
    if (!opts.json) console.log(`started baseBackup ${workflowId}`);
    if (!opts.wait) return void (opts.json && console.log(JSON.stringify({ workflowId })));
    const r = await waitWithProgress<BaseBackupWorkflowResult>(handle, !!opts.json);
    if (opts.json) return void console.log(JSON.stringify(r));
    console.log(`${r.cluster} ${r.backupId}: ${formatBytes(r.bytes)} stored, timeline ${r.timeline}, WAL ${r.startLsn} to ${r.stopLsn}, ${formatDuration(r.seconds)}${r.reused ? ' (already committed)' : ''}\n  ${r.path}`);
  });

program
  .command('pitr')
  .description('start a pointInTimeRecovery of a cluster: in place after approval (the old data directory is kept), or a rehearsal on a scratch copy')
  .requiredOption('--cluster <name>', 'cluster name from the config')
  .option('--target-time <time>', "recover to this time, with its zone: '2026-11-22 14:31:00+00'")
  .option('--target-lsn <lsn>', 'recover to this WAL position, e.g. 0/3000060')
  .option('--target-name <name>', 'recover to a restore point made with pg_create_restore_point()')
  .option('--latest', 'recover to the end of the archived WAL')
  .addOption(new Option('--mode <mode>', 'in-place (approval needed) or rehearsal (scratch copy, live cluster untouched)').choices(['in-place', 'rehearsal']).default('in-place'))
  .option('--approval-timeout <duration>', 'how long to wait for approve/reject (in-place)', '24 hours')
  .option('--wait', 'wait for the result, showing progress')
  .addOption(new Option('--json', 'print the result as JSON'))
  .addHelpText(
    'after',
    "\nExamples:\n  pgwarden pitr --cluster main --target-time '2026-11-22 14:31:00+00' --wait\n" +
      '  pgwarden approve pgwarden/main/pitr/20261122T143500Z --approver alice --reason "INC-42: undo the DELETE"\n' +
      '  pgwarden pitr --cluster main --latest --mode rehearsal --wait',
  )
  .action(async (opts: { cluster: string; targetTime?: string; targetLsn?: string; targetName?: string; latest?: boolean; mode: RecoveryMode; approvalTimeout: string; wait?: boolean; json?: boolean }) => {
    const cfg = config();
    requireCluster(cfg, opts.cluster);
    const targets: RecoveryTarget[] = [];
    if (opts.targetTime) targets.push({ time: opts.targetTime });
    if (opts.targetLsn) targets.push({ lsn: opts.targetLsn });
    if (opts.targetName) targets.push({ name: opts.targetName });
    if (opts.latest) targets.push({ latest: true });
    if (targets.length !== 1) throw usage('give exactly one of --target-time, --target-lsn, --target-name, --latest');
    const input: PointInTimeRecoveryInput = { cluster: opts.cluster, target: targets[0]!, mode: opts.mode, approvalTimeout: opts.approvalTimeout };
    const client = await connectClient(cfg);
    const workflowId = pitrWorkflowId(opts.cluster, formatBackupId(new Date()), opts.mode);
    const handle = await startRun(client, cfg, { cluster: opts.cluster, kind: 'pitr' }, { workflowId, args: [input] });
    if (!opts.json) console.log(`started pointInTimeRecovery ${workflowId} (${opts.mode})`);
    if (!opts.wait) return reportPlan(handle, !!opts.json, opts.mode === 'in-place');
    const r = await waitWithProgress<PointInTimeRecoveryResult>(handle, !!opts.json);
    process.exitCode = outcomeOf('COMPLETED', r)!.exitCode; // 3 when rejected or nobody approved
    if (opts.json) return void console.log(JSON.stringify(r));
    if (!r.recovery) return void console.log(`not recovered: ${r.outcome}${r.decision ? ` by ${r.decision.approver} (${r.decision.reason})` : ''}`);
    console.log(`${r.outcome}: ${r.cluster} to ${r.target} from base backup ${r.backupId}, timeline ${r.recovery.timeline}, at ${r.recovery.reachedLsn}`);
    if (r.recovery.stoppedAt) console.log(`  ${r.recovery.stoppedAt}`);
    console.log(`  steps: ${r.steps.map((s) => `${s.step} ${formatDuration(s.seconds)}`).join(', ')}`);
    if (r.previousDataDirectory) console.log(`  the previous data directory is kept at ${r.previousDataDirectory}`);
  });

const offsite = program
  .command('offsite')
  .description('copy backups and WAL offsite (S3, rsync over ssh) and check the copies')
  .addHelpText('after', '\nExamples:\n  pgwarden offsite sync --cluster main --wait\n  pgwarden offsite sync --cluster main --wal-only --check quick\n  pgwarden offsite check --cluster main --repository s3');

for (const what of ['sync', 'check'] as const) {
  offsite
    .command(what)
    .description(
      what === 'sync'
        ? 'start an offsiteSync: upload what each offsite repository lacks (never deleting or overwriting there), its retention, then the remote check'
        : 'run the remote check alone: every object present, with the size and sha256 the local manifests expect',
    )
    .requiredOption('--cluster <name>', 'cluster name from the config')
    .option('--repository <name...>', 'offsite repositories (default: all of the cluster)')
    .option('--wal-only', 'only the WAL archive')
    .addOption(new Option('--check <depth>', 'full: read back and hash every object; quick: sizes and recorded sha256, content of new uploads').choices(['full', 'quick']).default('full'))
    .option('--wait', 'wait for the result, showing progress (check: always waits)')
    .addOption(new Option('--json', 'print the result as JSON'))
    .addHelpText('after', `\nExample:\n  pgwarden offsite ${what} --cluster main${what === 'sync' ? ' --wait' : ''}`)
    .action(async (opts: { cluster: string; repository?: string[]; walOnly?: boolean; check: 'full' | 'quick'; wait?: boolean; json?: boolean }) => {
      const cfg = config();
      requireCluster(cfg, opts.cluster);
      for (const r of opts.repository ?? []) {
        if (cfg.repositories[r]?.type !== 's3' && cfg.repositories[r]?.type !== 'rsync') throw usage(`"${r}" is not an s3 or rsync repository in the config`);
      }
      const input: OffsiteSyncInput = { cluster: opts.cluster, repositories: opts.repository, walOnly: opts.walOnly, check: opts.check, checkOnly: what === 'check' };
      const client = await connectClient(cfg);
      const workflowId = offsiteWorkflowId(opts.cluster, formatBackupId(new Date()), what === 'check' ? 'check' : opts.walOnly ? 'wal' : 'sync');
      const handle = await startRun(client, cfg, { cluster: opts.cluster, kind: 'offsite' }, { workflowId, args: [input] });
      if (!opts.json) console.log(`started offsiteSync ${workflowId}`);
      if (!opts.wait && what === 'sync') return void (opts.json && console.log(JSON.stringify({ workflowId })));
      // A failed run still carries every repository's result: the good ones' lines, and each problem on its own line.
      const r = await waitWithProgress<OffsiteSyncResult>(handle, !!opts.json).catch((err: unknown) => {
        const failed = offsiteFailure(err);
        if (!failed) throw err;
        if (opts.json) console.log(JSON.stringify(failed));
        else for (const line of offsiteReportLines(failed.repositories)) console.log(line);
        const names = failed.repositories.filter((x) => x.error).map((x) => x.repository);
        throw new UserError(`offsite ${what} failed for ${names.join(', ')}${opts.json ? '' : ' (problems above)'}`);
      });
      if (opts.json) return void console.log(JSON.stringify(r));
      for (const line of offsiteReportLines(r.repositories)) console.log(line);
    });
}

/** The result an OffsiteSyncFailed run carries in its failure's details, else undefined. */
function offsiteFailure(err: unknown): OffsiteSyncResult | undefined {
  if (!(err instanceof Error) || err.name !== 'WorkflowFailedError') return undefined;
  const cause = (err as { cause?: { type?: string; details?: unknown[] } }).cause;
  const details = cause?.type === 'OffsiteSyncFailed' ? (cause.details?.[0] as OffsiteSyncResult | undefined) : undefined;
  return Array.isArray(details?.repositories) ? details : undefined;
}

for (const [name, signal] of [['approve', 'approve'], ['reject', 'reject']] as const) {
  program
    .command(`${name} <workflowId>`)
    .description(`${name} a restore or recovery waiting at its approval step (recorded with who and why)`)
    .requiredOption('--approver <name>', 'who decides')
    .requiredOption('--reason <text>', 'why (a ticket, an incident)')
    .addHelpText('after', `\nExample:\n  pgwarden ${name} pgwarden/main/app/restore/20261122T020000Z --approver alice --reason "INC-42"`)
    .action(async (workflowId: string, opts: { approver: string; reason: string }) => {
      if (!opts.approver.trim() || !opts.reason.trim()) throw usage('--approver and --reason must not be empty');
      const client = await connectClient(config());
      const handle = client.workflow.getHandle(workflowId);
      const live = await liveStatus(handle, { queryTimeoutMs: 5000 }).catch(notFoundAsUserError(workflowId));
      const running = live.status === 'RUNNING';
      const step = live.progress?.step;
      if (!running || step !== 'approve') {
        if (step) throw new UserError(`${workflowId} is not waiting for approval (${running || step !== 'approve' ? `step: ${step}` : statusWord(live.status)})`);
        if (!running) throw new UserError(`${workflowId} is ${statusWord(live.status)}, not waiting for approval`);
        throw new UserError(`cannot tell whether ${workflowId} waits for approval: no worker answered its progress query (is a worker running on "${live.taskQueue}"?)`);
      }
      await handle.signal(signal, { approver: opts.approver, reason: opts.reason });
      console.log(`${name === 'approve' ? 'approved' : 'rejected'} ${workflowId} as ${opts.approver}: ${opts.reason}`);
    });
}

registerRunCommands(program, config);

/**
 * `restore` / `pitr` without --wait: returns once the run's plan holds, saying what it waits for; a
 * run that fails in its plan (a backup id that does not exist, a target the WAL does not reach)
 * throws its error, so the command exits non-zero naming it.
 */
async function reportPlan(handle: WorkflowHandle, json: boolean, approval: boolean): Promise<void> {
  const { waitPastPlan } = await import('./progress.js');
  const { workflowId } = handle;
  const planned = await waitPastPlan(handle);
  if (planned.state === 'ended') {
    const outcome = outcomeOf('COMPLETED', planned.result)!;
    process.exitCode = outcome.exitCode;
    return void console.log(json ? JSON.stringify(planned.result) : `  ${outcome.text}`);
  }
  if (json) return void console.log(JSON.stringify({ workflowId, step: planned.state === 'planned' ? planned.step : 'plan' }));
  if (planned.state === 'planning') return void console.log(`  ${planned.why}; follow it with: pgwarden status ${workflowId}`);
  if (planned.step === 'approve') {
    const { what } = approvalOf(planned.detail, workflowId);
    if (what) console.log(`  would: ${what}`);
    console.log(`  it waits for approval: pgwarden approve ${workflowId} --approver NAME --reason TEXT   (or: pgwarden reject ...)`);
  } else {
    console.log(`  planned; now at ${planned.step}${planned.detail ? ` (${planned.detail})` : ''}${approval ? ', then it waits for approval' : ''}; follow it with: pgwarden status ${workflowId}`);
  }
}

async function waitWithProgress<T>(handle: WorkflowHandle, quiet: boolean): Promise<T> {
  return (await import('./progress.js')).waitWithProgress<T>(handle, quiet);
}

async function connectClient(cfg: Config) {
  return (await import('./client.js')).connectClient(cfg);
}

async function startRun(...args: Parameters<typeof import('./client.js').startRun>) {
  return (await import('./client.js')).startRun(...args);
}

async function liveStatus(...args: Parameters<typeof import('./client.js').liveStatus>) {
  return (await import('./client.js')).liveStatus(...args);
}

/**
 * Parses the command line and runs the command; called last, once every command is registered:
 * groups defined elsewhere without examples of their own get some, and usage mistakes become one
 * line (see errors.ts).
 */
function run(): void {
  const groupExamples: Record<string, string[]> = {
    cluster: ['pgwarden cluster archiving --cluster main', 'pgwarden cluster archiving --cluster main --apply'],
    schedules: ['pgwarden schedules apply --dry-run', 'pgwarden schedules list', 'pgwarden schedules trigger pgwarden/main/all/full-daily --wait'],
  };
  for (const cmd of program.commands) {
    const examples = groupExamples[cmd.name()];
    // commander keeps addHelpText as 'afterHelp' listeners (a Command is an EventEmitter).
    if (examples && (cmd as unknown as EventEmitter).listenerCount('afterHelp') === 0) cmd.addHelpText('after', `\nExamples:\n${examples.map((e) => `  ${e}`).join('\n')}`);
  }
  oneLineErrors(program);
  program.parseAsync(process.argv).catch((err: unknown) => {
    reportError(err);
    process.exit(process.exitCode ?? 1);
  });
}

registerWalCommands(program, config);
registerClusterCommands(program, config);
registerScheduleCommands(program, config);
registerHealthCommands(program, config);
registerRetentionCommands(program, config);
registerBackupsCommands(program, config);

run();

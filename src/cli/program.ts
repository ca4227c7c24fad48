// The `pgwarden` program (loaded by main.ts): the commands, one file each under commands/, wired in
// the order `pgwarden --help` lists them. Temporal's modules load lazily: wal-get starts once per
// WAL file and must be quick.
import { Command } from 'commander';
import { loadConfig, type Config } from '../config/index.js';
import { oneLineErrors, reportError, trackRunningCommand } from './errors.js';
import { registerApprovalCommands } from './commands/approval.js';
import { registerBackupCommand } from './commands/backup.js';
import { registerBackupsCommands } from './commands/backups.js';
import { registerBaseBackupCommand } from './commands/baseBackup.js';
import { registerClusterCommands } from './commands/cluster.js';
import { registerDevCommand } from './commands/dev.js';
import { registerHealthCommands } from './commands/health.js';
import { registerListCommand } from './commands/list.js';
import { registerOffsiteCommands } from './commands/offsite.js';
import { registerPitrCommand } from './commands/pitr.js';
import { registerRestoreCommand } from './commands/restore.js';
import { registerRetentionCommands } from './commands/retention.js';
import { registerScheduleCommands } from './commands/schedules.js';
import { registerStandbyCommands } from './commands/standby.js';
import { registerStatusCommand } from './commands/status.js';
import { registerVerifyCommand } from './commands/verify.js';
import { registerWalCommands } from './commands/wal.js';
import { registerWorkerCommand } from './commands/worker.js';

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

trackRunningCommand(program);
for (const register of [
  registerWorkerCommand,
  registerDevCommand,
  registerBackupCommand,
  registerVerifyCommand,
  registerRestoreCommand,
  registerBaseBackupCommand,
  registerPitrCommand,
  registerStandbyCommands,
  registerOffsiteCommands,
  registerApprovalCommands,
  registerListCommand,
  registerStatusCommand,
  registerWalCommands,
  registerClusterCommands,
  registerScheduleCommands,
  registerHealthCommands,
  registerRetentionCommands,
  registerBackupsCommands,
]) {
  register(program, config);
}

// Once every command is registered: usage mistakes become one line (see errors.ts).
oneLineErrors(program);
program.parseAsync(process.argv).catch((err: unknown) => {
  reportError(err);
  process.exit(process.exitCode ?? 1);
});

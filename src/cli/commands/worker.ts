// `pgwarden worker`: run a worker on the shared queue and this host's queue.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';

export function registerWorkerCommand(program: Command, config: () => Config): void {
  program
    .command('worker')
    .description("run a worker on the shared queue `pgwarden` and this host's queue `pgwarden@<host>`")
    .addHelpText(
      'after',
      '\nExample:\n  TEMPORAL_ADDRESS=temporal:7233 pgwarden worker --config /etc/pgwarden/pgwarden.config.json',
    )
    .action(async (_opts: object, command: Command) => {
      const cfg = config();
      // What the worker writes into a server's restore_command (createStandby) names this config file.
      const file = command.optsWithGlobals<{ config?: string }>().config;
      if (file) process.env.PGWARDEN_CONFIG = resolve(file);
      const { connectWorker, runWorkers } = await import('../../worker/worker.js');
      const connection = await connectWorker(cfg.temporal.address);
      try {
        await runWorkers({ config: cfg, connection });
      } finally {
        await connection.close();
      }
    });
}

// `pgwarden dev`: the Temporal dev server (with its web UI) and a worker, for trying pgwarden on one machine.
import type { Command } from 'commander';
import type { Config } from '../../config/index.js';

export function registerDevCommand(program: Command, config: () => Config): void {
  program
    .command('dev')
    .description('start the Temporal dev server (with its web UI) and a worker, for trying pgwarden on one machine')
    .option('--port <port>', 'Temporal frontend port', '7233')
    .option('--ui-port <port>', 'web UI port', '8233')
    .option(
      '--metrics-port <port>',
      "serve the worker's Prometheus metrics on this port (default: the config's metrics.port, else off)",
    )
    .option('--db-file <file>', 'keep workflow history in this SQLite file', '.pgwarden-dev.sqlite')
    .addHelpText(
      'after',
      '\nExamples:\n  pgwarden dev --config pgwarden.config.json\n  pgwarden dev --port 7234 --ui-port 8234 --metrics-port 9464 --db-file /tmp/pgwarden-dev.sqlite',
    )
    .action(async (opts: { port: string; uiPort: string; metricsPort?: string; dbFile: string }) => {
      const cfg = config();
      const { NativeConnection } = await import('@temporalio/worker');
      const { runWorkers } = await import('../../worker/worker.js');
      const { startDevServer, assertPortsFree, devPorts } = await import('../../worker/devServer.js');
      const ports = devPorts(opts, cfg.metrics.port);
      // Every port is checked before anything starts: a taken one fails here, in one line naming it.
      await assertPortsFree(ports.uses);
      const server = await startDevServer({ port: ports.port, uiPort: ports.uiPort, dbFile: opts.dbFile });
      const metrics = !ports.metricsPort ? '' : `; metrics at http://${cfg.metrics.host}:${ports.metricsPort}/metrics`;
      console.log(`Temporal dev server at ${server.address}; UI at ${server.uiAddress}${metrics}`);
      const connection = await NativeConnection.connect({ address: server.address });
      try {
        const devConfig = {
          ...cfg,
          temporal: { ...cfg.temporal, address: server.address },
          metrics: { ...cfg.metrics, port: ports.metricsPort },
        };
        await runWorkers({ config: devConfig, connection });
      } finally {
        await connection.close();
        await server.stop();
      }
    });
}

// The logical restore's own steps: names, hooks, the swap and ANALYZE. The restore itself and the
// comparison with the manifest are verify.ts's, pointed at `<db>_restore_<id>`.
import { Context } from '@temporalio/activity';
import type { Config } from '../config/index.js';
import { ErrorType, nonRetryable, retryable } from '../lib/errors.js';
import { runHook } from './hooks.js';
import * as postgres from '../postgres/connection.js';
import { withoutDatabaseLimits } from '../postgres/privileges.js';
import type { RestoreNames } from '../lib/ids.js';
import type { VerifyPlan } from './verify/verify.js';

export function createRestoreActivities({ config, env }: { config: Config; env: NodeJS.ProcessEnv }) {
  const clusterRef = (name: string) => postgres.clusterRef(config, name);

  /** Runs the cluster's pre- or post-restore hook, if configured. A failing hook stops the restore. */
  async function runRestoreHook(input: {
    cluster: string;
    database: string;
    hook: 'preRestore' | 'postRestore';
  }): Promise<string> {
    const argv = clusterRef(input.cluster).config.hooks[input.hook];
    if (!argv) return 'no hook configured';
    // A cancelled restore ends its hook; a retry waits for the one a dead worker started (hooks.ts).
    await runHook({
      hook: input.hook,
      argv,
      cluster: input.cluster,
      database: input.database,
      failure: ErrorType.RestoreFailed,
      signal: Context.current().cancellationSignal,
    });
    return `${argv.join(' ')}: ok`;
  }

  /**
   * Renames the live database to `<db>_pre_restore_<id>_<run>` and the restored one to `<db>`. Safe to
   * repeat: each state an earlier attempt can leave is recognised; any other state (a database
   * already under the name the live one is to be kept as, the restored copy gone) fails naming it,
   * instead of reporting a swap that did not happen. A finished swap onto a missing live database
   * (nothing kept) is told by the live database's OID being the restored copy's (`restoredOid`, from
   * restoreIntoScratch). Sessions on a database being renamed are refused and terminated first.
   */
  async function swapDatabases(
    plan: VerifyPlan & RestoreNames & { restoredOid?: number },
  ): Promise<{ previousDatabase?: string }> {
    const cluster = clusterRef(plan.restoreCluster);
    return postgres.withConnection(cluster, cluster.config.maintenanceDatabase, env, async (client) => {
      const exists = async (name: string) =>
        (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
      const oidOf = async (name: string) =>
        Number(
          (await client.query<{ oid: string }>('SELECT oid::text AS oid FROM pg_database WHERE datname = $1', [name]))
            .rows[0]?.oid,
        );
      const rename = async (from: string, to: string) => {
        await client.query(`ALTER DATABASE ${postgres.quoteIdent(from)} ALLOW_CONNECTIONS false`);
        await client.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [from],
        );
        try {
          await client.query(`ALTER DATABASE ${postgres.quoteIdent(from)} RENAME TO ${postgres.quoteIdent(to)}`);
        } catch (err) {
          await client
            .query(`ALTER DATABASE ${postgres.quoteIdent(from)} ALLOW_CONNECTIONS true`)
            .catch(() => undefined);
          throw retryable(ErrorType.RestoreFailed, `cannot rename ${from} to ${to}: ${(err as Error).message}`);
        }
        await client.query(`ALTER DATABASE ${postgres.quoteIdent(to)} ALLOW_CONNECTIONS true`);
      };
      const live = await exists(plan.database);
      const kept = await exists(plan.preRestoreDatabase);
      const restored = await exists(plan.restoreDatabase);
      let previousDatabase: string | undefined = plan.preRestoreDatabase;
      if (restored) {
        if (live && kept) {
          throw nonRetryable(
            ErrorType.RestoreFailed,
            `cannot keep "${plan.database}" as "${plan.preRestoreDatabase}": a database of that name exists already; nothing was swapped, the restored copy is "${plan.restoreDatabase}"`,
          );
        }
        if (live) await rename(plan.database, plan.preRestoreDatabase);
        else if (!kept) previousDatabase = undefined; // there was no live database to keep
        await rename(plan.restoreDatabase, plan.database);
      } else if (live && !kept && plan.restoredOid !== undefined && (await oidOf(plan.database)) === plan.restoredOid) {
        previousDatabase = undefined; // an earlier attempt put the restored copy in place of a missing live database
      } else if (!(live && kept)) {
        // Not the state a finished swap leaves (the live name taken by the restored copy, the old one kept).
        throw nonRetryable(
          ErrorType.RestoreFailed,
          `the restored database "${plan.restoreDatabase}" does not exist${kept ? '' : ` and "${plan.preRestoreDatabase}" was never made`}; "${plan.database}" ${live ? 'is untouched' : 'does not exist'}`,
        );
      }
      // An attempt that died between refusing connections and renaming may have left either refusing.
      for (const name of [plan.database, plan.preRestoreDatabase]) {
        if (await exists(name))
          await client.query(`ALTER DATABASE ${postgres.quoteIdent(name)} ALLOW_CONNECTIONS true`);
      }
      return { previousDatabase };
    });
  }

  async function analyzeDatabase(input: { cluster: string; database: string; reindex: boolean }): Promise<void> {
    const cluster = clusterRef(input.cluster);
    await postgres.withConnection(cluster, input.database, env, async (client) => {
      await withoutDatabaseLimits(client);
      if (input.reindex) await client.query(`REINDEX DATABASE ${postgres.quoteIdent(input.database)}`);
      await client.query('ANALYZE');
    });
  }

  return { runRestoreHook, swapDatabases, analyzeDatabase };
}

// What every PITR activity shares: the config and environment, the cluster as configured (or at
// another address), its hooks and where its server logs.
import type { ClusterConfig, Config } from '../../config/index.js';
import { ErrorType } from '../../lib/errors.js';
import * as postgres from '../../postgres/connection.js';
import { runHook } from '../hooks.js';
import type { RecoveryPlan } from './types.js';

/** Written in the work directory by a swap that found no data directory (a rebuilt host): a rollback leaves it missing again. */
export const NO_ORIGINAL = 'NO-ORIGINAL';
/** Written in the work directory by a swap that found the data directory empty (a rebuilt host's): its mode and owner, which a rollback lays it down with again. */
export const EMPTY_ORIGINAL = 'EMPTY-ORIGINAL';
/** WAL segments decoded by one gpg and one zstd process while staging (two batches at a time). */
export const WAL_BATCH = 8;

export interface PitrDeps {
  config: Config;
  env: NodeJS.ProcessEnv;
}

export interface PitrContext extends PitrDeps {
  clusterRef(name: string): postgres.ClusterRef;
  cc(plan: { cluster: string }): ClusterConfig;
  /** The cluster as configured, but at another address (a rehearsal's scratch server). */
  at(cluster: postgres.ClusterRef, host: string, port: number): postgres.ClusterRef;
  /** Where a server pgwarden starts in the live data directory writes its output (pg_ctl -l): the config's logFile, else beside the data directory. */
  serverLogOf(plan: RecoveryPlan): string;
  /** The cluster's hook, when one is configured; a cancelled step lets it finish (the stop waits for it). */
  runClusterHook(plan: RecoveryPlan, name: 'preRestore' | 'postRestore'): Promise<void>;
}

export function pitrContext({ config, env }: PitrDeps): PitrContext {
  const clusterRef = (name: string) => postgres.clusterRef(config, name);
  const cc = (plan: { cluster: string }) => clusterRef(plan.cluster).config;
  /** The cluster as configured, but at another address (a rehearsal's scratch server). */
  const at = (cluster: postgres.ClusterRef, host: string, port: number): postgres.ClusterRef => ({
    name: cluster.name,
    config: { ...cluster.config, host, port },
  });

  /** Where a server pgwarden starts in the live data directory writes its output (pg_ctl -l): the config's logFile, else beside the data directory. */
  const serverLogOf = (plan: RecoveryPlan) => cc(plan).logFile ?? `${plan.dataDirectory}.log`;

  /** The cluster's hook, when one is configured; a cancelled step lets it finish (the stop waits for it). */
  async function runClusterHook(plan: RecoveryPlan, name: 'preRestore' | 'postRestore'): Promise<void> {
    const argv = clusterRef(plan.cluster).config.hooks[name];
    if (argv) await runHook({ hook: name, argv, cluster: plan.cluster, failure: ErrorType.ClusterControlFailed });
  }

  return { config, env, clusterRef, cc, at, serverLogOf, runClusterHook };
}

// healthCheck's and the metrics' view of a cluster's standbys: the primary's WAL senders and each
// standby's own replay state, joined and judged by src/lib/replication.ts. Reading only.
import type { Config } from '../../config/index.js';
import { replicationSettings, standbyStates, type ReplicationStatus } from '../../lib/replication.js';
import { clusterRef, withConnection } from '../../postgres/connection.js';
import { readPrimaryReplication, readStandbys } from '../../postgres/replication.js';

/** Undefined for a cluster without standbys: nothing is read, nothing changes for it. */
export async function collectReplication(
  config: Config,
  env: NodeJS.ProcessEnv,
  cluster: string,
): Promise<ReplicationStatus | undefined> {
  const ref = clusterRef(config, cluster);
  const standbys = ref.config.standbys ?? [];
  if (standbys.length === 0) return undefined;
  const [primary, readings] = await Promise.all([
    withConnection(ref, ref.config.maintenanceDatabase, env, readPrimaryReplication).then(
      (p) => ({ p }),
      (err: Error) => ({ error: err.message }),
    ),
    readStandbys(ref, standbys, env),
  ]);
  const p = 'p' in primary ? primary.p : undefined;
  return {
    ...(p ? { primary: p } : { primaryError: (primary as { error: string }).error }),
    standbys: standbyStates(p, readings, replicationSettings(ref.config)),
  };
}

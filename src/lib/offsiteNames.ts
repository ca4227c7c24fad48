// Which offsite repositories a cluster's backups go to: the one home of the default, read by offsite
// sync and fetch, local retention's offsite gate, health, `pgwarden backups` and the schedules.
import type { Config } from '../config/index.js';
import { ErrorType, nonRetryable } from './errors.js';

/** The offsite repositories of a cluster: its `offsite` list, else every s3 and rsync repository. */
export function offsiteNames(config: Config, cluster: string): string[] {
  const c = config.clusters[cluster];
  if (!c) throw nonRetryable(ErrorType.UnknownCluster, `unknown cluster "${cluster}"`);
  return (
    c.offsite ??
    Object.entries(config.repositories)
      .filter(([, r]) => r.type !== 'local')
      .map(([name]) => name)
  );
}

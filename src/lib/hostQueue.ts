// The task queue of the worker on a database host, where everything that touches a data directory
// runs: the worker polls it, and PITR sends a cluster's host-side steps to it.

/** The host-local queue of the worker on `host` (its worker.host, else the machine's name). */
export function hostQueueName(host: string): string {
  return `pgwarden@${host}`;
}

const LOOPBACK = ['127.0.0.1', 'localhost', '::1'];

/**
 * The queue of the worker on a cluster's host: its hostQueue when configured; for a cluster at a
 * loopback address, this worker's own host (`localHost`); else the host the cluster is reached at.
 */
export function clusterHostQueue(cluster: { host: string; hostQueue?: string | undefined }, localHost: string): string {
  return cluster.hostQueue ?? hostQueueName(LOOPBACK.includes(cluster.host) ? localHost : cluster.host);
}

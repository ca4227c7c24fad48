// The host-local queue name: the worker polls `pgwarden@<its host>`, and PITR sends a cluster's
// host-side steps to the queue of the worker on the cluster's host (this one's for a loopback address).
import { describe, expect, it } from 'vitest';
import { clusterHostQueue, hostQueueName } from '../../src/lib/hostQueue.js';

describe('hostQueueName', () => {
  it('names the queue after the host', () => {
    expect(hostQueueName('db1.example.com')).toBe('pgwarden@db1.example.com');
  });

  it("sends a cluster's steps to its configured queue, else to its host's worker", () => {
    expect(clusterHostQueue({ host: 'db1', hostQueue: 'custom' }, 'here')).toBe('custom');
    expect(clusterHostQueue({ host: 'db1' }, 'here')).toBe('pgwarden@db1');
  });

  it('sends a cluster at a loopback address to this worker', () => {
    for (const host of ['127.0.0.1', 'localhost', '::1'])
      expect(clusterHostQueue({ host }, 'here')).toBe('pgwarden@here');
  });
});

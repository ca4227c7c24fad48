// pgwarden's downtime in npm run bench:pitr: in-place pointInTimeRecovery runs of the live cluster
// to the end of the archive (the rehearsals' target), after all the other runs (an in-place run
// changes the live cluster and adds a timeline to the archive; its archive_command then feeds
// pgwarden's archive only, as it would without pgBackRest beside it). The live cluster is started
// again; each run goes through plan, stage and whatever else precedes the approval while it
// serves, and its downtime is the wall time from the `approve` signal to the run's result (stop,
// swap, recover, verify: the cluster is down or not yet checked throughout). Each run's verify step
// checks the state at T, and the benchmark checks the recovered live cluster again.
import { dirname, join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { Progress } from '../../src/workflows/messages.js';
import type { PointInTimeRecoveryResult } from '../../src/workflows/pointInTimeRecovery.js';
import type { TestCluster } from '../../test/helpers/postgres.js';
import { PG_BIN } from '../../test/helpers/require.js';
import { asPostgres, checkState, since, type StateAtT } from './pitrServer.js';

export interface InPlaceRun {
  /** approve → result */
  downtimeSeconds: number;
  /** start → the approve step */
  beforeApprovalSeconds: number;
  result: PointInTimeRecoveryResult;
}

export async function inPlaceRuns(o: {
  client: Client;
  cluster: TestCluster;
  state: StateAtT;
  taskQueue: string;
  runs: number;
  log: (line: string) => void;
}): Promise<InPlaceRun[]> {
  const { cluster } = o;
  await asPostgres(join(PG_BIN, 'pg_ctl'), [
    '-D',
    cluster.dataDir,
    '-l',
    join(dirname(cluster.dataDir), 'server.log'),
    '-w',
    '-t',
    '120',
    'start',
  ]);
  const runs: InPlaceRun[] = [];
  for (let i = 0; i < o.runs; i++) {
    const started = process.hrtime.bigint();
    const handle = await o.client.workflow.start('pointInTimeRecovery', {
      taskQueue: o.taskQueue,
      workflowId: `bench-pitr-in-place-${i}`,
      args: [{ cluster: 'main', target: { latest: true }, mode: 'in-place' }],
    });
    for (;;) {
      const progress = await handle.query<Progress>('progress').catch(() => undefined);
      if (progress?.step === 'approve') break;
      const described = await handle.describe();
      if (described.status.name !== 'RUNNING')
        throw new Error(`in-place recovery ${i + 1} ended before its approval: ${described.status.name}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const beforeApprovalSeconds = since(started);
    const approved = process.hrtime.bigint();
    await handle.signal('approve', { approver: 'bench', reason: 'downtime measurement' });
    const result = (await handle.result()) as PointInTimeRecoveryResult;
    const downtimeSeconds = since(approved);
    await checkState(cluster.port, cluster.password, o.state, `in-place recovery ${i + 1}`);
    runs.push({ downtimeSeconds, beforeApprovalSeconds, result });
    o.log(
      `  pgwarden in place #${i + 1}: approve → done ${downtimeSeconds.toFixed(1)} s, ${beforeApprovalSeconds.toFixed(1)} s before the approval ` +
        `(${result.steps.map((s) => `${s.step} ${s.seconds.toFixed(1)}`).join(', ')}; timeline ${result.recovery?.timeline}); state at T checked`,
    );
  }
  return runs;
}

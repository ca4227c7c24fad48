// A run started without pgwarden's labels (the README's bare `temporal workflow start --input ...`:
// no id, no memo, no search attributes) labels itself from its input, so `pgwarden list --cluster`
// and the UI's filters find it like the runs the CLI and the schedules start.
import { patched, proxyLocalActivities, upsertMemo, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { clusterKey, memoOf, searchAttributesOf, type RunKind, type RunLabels } from '../lib/visibility.js';

// NotFoundError: a worker without pgwarden's activities (a test's stubs) answers at once that it cannot ask.
const { searchAttributesRegistered } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3, nonRetryableErrorTypes: ['NotFoundError'] },
});

export async function selfLabels(kind: RunKind, input: { cluster?: unknown; database?: unknown }): Promise<void> {
  const info = workflowInfo();
  if (info.typedSearchAttributes.get(clusterKey) !== undefined || typeof input?.cluster !== 'string') return;
  // Runs started before this replay without labelling themselves.
  if (!patched('self-labels')) return;
  const labels: RunLabels = {
    cluster: input.cluster,
    kind,
    ...(typeof input.database === 'string' && input.database ? { database: input.database } : {}),
  };
  if (info.memo?.cluster === undefined) upsertMemo(memoOf(labels));
  // Upserting an attribute the server does not know fails the workflow task: ask the server first.
  // Not knowing (the server did not answer) leaves the run with its memo alone, never failed.
  if (await searchAttributesRegistered().catch(() => false)) upsertSearchAttributes(searchAttributesOf(labels));
}

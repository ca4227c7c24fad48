// Labels for child runs. Temporal copies neither the memo nor the search attributes from the
// parent, so the per-database backups of a "*" run and their verifications carry their own:
// `pgwarden list --database app` and the UI's filters find the nightly backups too.
import { patched, workflowInfo, type ChildWorkflowOptions } from '@temporalio/workflow';
import { runDetails, runSummary } from '../lib/runSummary.js';
import { clusterKey, memoOf, searchAttributesOf, type RunLabels } from '../lib/visibility.js';

/** Labels and the UI's summary of a child run (`input`: its input). */
export function childLabels(
  labels: RunLabels,
  input: Record<string, unknown>,
): Pick<ChildWorkflowOptions, 'memo' | 'typedSearchAttributes' | 'staticSummary' | 'staticDetails'> {
  // The summary is the child's metadata, not a command of this run: old histories replay with it.
  const metadata = {
    staticSummary: runSummary(labels.kind, input),
    staticDetails: runDetails(labels.kind, input, {
      startedBy: `${workflowInfo().workflowType} ${workflowInfo().workflowId}`,
    }),
  };
  // Histories of runs started before children had labels replay without them.
  if (!patched('child-labels')) return metadata;
  // Starting a child with an attribute the server does not know fails: set them only when this
  // run carries them, which proves they are registered.
  const registered = workflowInfo().typedSearchAttributes.get(clusterKey) !== undefined;
  return {
    memo: memoOf(labels),
    ...(registered ? { typedSearchAttributes: searchAttributesOf(labels) } : {}),
    ...metadata,
  };
}

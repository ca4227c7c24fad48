// repositoryInfo: what a cluster's repository holds, read on a worker (`pgwarden backups` when the
// repository is not on the CLI's host). One read-only activity: no history worth keeping, no
// approval, nothing to resume; not a run kind (`pgwarden list` and the failed-run alerts skip it).
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { RepositoryInfoInput } from '../activities/repositoryInfo.js';
import { QUICK_ACTIVITY } from '../lib/activityOptions.js';
import type { RepositoryInfo } from '../lib/repositoryInfo.js';

const { repositoryInfo: readRepository } = proxyActivities<Activities>({
  ...QUICK_ACTIVITY,
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 2 },
  summary: 'read the repository: manifests, WAL records, offsite confirmations',
});

export async function repositoryInfo(input: RepositoryInfoInput): Promise<RepositoryInfo> {
  return readRepository(input);
}

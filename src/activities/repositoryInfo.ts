// `pgwarden backups`: reads a cluster's repository (manifests, WAL records, offsite confirmation
// records; nothing is written) into the listing src/lib/repositoryInfo.ts builds. The CLI calls
// readRepositoryInfo itself when the repository's directory is on its host, else runs the
// `repositoryInfo` workflow, whose one activity is this on a worker of the shared queue.
import { hostname } from 'node:os';
import type { Config } from '../config/index.js';
import { buildRepositoryInfo, type RepositoryInfo } from '../lib/repositoryInfo.js';
import type { OffsiteConfirmations } from '../lib/offsiteConfirmed.js';
import { readRecord } from '../storage/offsiteConfirmed.js';
import { offsiteNames } from '../lib/offsiteNames.js';
import { openRepository } from '../storage/clusterRepository.js';

export interface RepositoryInfoInput {
  cluster: string;
  /** Only this database's logical backups (base backups and the WAL archive are listed still). */
  database?: string;
}

export async function readRepositoryInfo(
  config: Config,
  input: RepositoryInfoInput,
  readOn = hostname(),
): Promise<RepositoryInfo> {
  const repo = openRepository(config, input.cluster);
  const databases = input.database ? [input.database] : await repo.logicalDatabases();
  const logical = (await Promise.all(databases.map((d) => repo.logicalBackups(d)))).flat();
  const records = await repo.wal.list();
  const offsite = new Map<string, OffsiteConfirmations | undefined>();
  for (const name of offsiteNames(config, input.cluster))
    offsite.set(name, await readRecord(repo, input.cluster, name));
  return buildRepositoryInfo({
    cluster: input.cluster,
    repository: repo.name,
    path: repo.root,
    readOn,
    base: await repo.baseBackups(),
    logical,
    wal: [...records.values()].map((r) => ({ name: r.name, bytes: r.bytes })),
    offsite,
  });
}

export function createRepositoryInfoActivities({ config }: { config: Config }) {
  /** Reading only: safe to run any number of times. */
  async function repositoryInfo(input: RepositoryInfoInput): Promise<RepositoryInfo> {
    return readRepositoryInfo(config, input);
  }
  return { repositoryInfo };
}

// The durable record of what each offsite repository's remote check confirmed
// (`<repository>/<cluster>/offsite/<offsite repository>.json`, see src/lib/offsiteConfirmed.ts),
// written after every passing check and read by local retention: where a cluster has offsite
// repositories, a backup or WAL file is deleted locally only once every one of them confirmed it.
import type { Config } from '../config/index.js';
import type { LocalObject, RemoteEntry } from '../lib/offsite.js';
import { awaitingConfirmation, recordAfterCheck, type OffsiteConfirmations } from '../lib/offsiteConfirmed.js';
import { offsiteNames } from '../lib/offsiteNames.js';
import type { LocalRepository } from './repository.js';

function recordKey(cluster: string, repository: string): string {
  return `${cluster}/offsite/${repository}.json`;
}

export async function readRecord(
  repo: LocalRepository,
  cluster: string,
  repository: string,
): Promise<OffsiteConfirmations | undefined> {
  const text = (await repo.storage.readIfExists(recordKey(cluster, repository)))?.toString('utf8');
  return text === undefined ? undefined : (JSON.parse(text) as OffsiteConfirmations);
}

/**
 * After a passing check: what it saw on the remote is confirmed offsite from now on, and what the
 * remote's own retention does not keep (committed here, none of it in `expected`) is recorded as such.
 * `inventory`: every committed local object in the check's scope; `expected`: those the remote's policy keeps.
 */
export async function recordOffsiteConfirmed(
  repo: LocalRepository,
  input: { cluster: string; repository: string; walOnly?: boolean },
  inventory: readonly LocalObject[],
  expected: readonly LocalObject[],
  remote: ReadonlyMap<string, RemoteEntry>,
  now = new Date(),
): Promise<void> {
  const record = recordAfterCheck(await readRecord(repo, input.cluster, input.repository), {
    repository: input.repository,
    inventory,
    expected,
    remote,
    walOnly: input.walOnly,
    now,
  });
  await repo.storage.makeDir(`${input.cluster}/offsite`); // 0700, owned like the repository (as root)
  await repo.storage.write(recordKey(input.cluster, input.repository), JSON.stringify(record) + '\n');
}

/**
 * Which offsite repositories still have to confirm a group (`<cluster>/base/<id>`,
 * `<cluster>/logical/<db>/<id>`, `<cluster>/wal/<name>`) before it may be deleted locally.
 */
export async function offsiteGate(
  config: Config,
  repo: LocalRepository,
  cluster: string,
): Promise<(group: string) => string[]> {
  const repositories = offsiteNames(config, cluster);
  const records = new Map<string, OffsiteConfirmations | undefined>();
  for (const r of repositories) records.set(r, await readRecord(repo, cluster, r));
  return (group) => awaitingConfirmation(group, repositories, records);
}

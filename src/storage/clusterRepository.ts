// A cluster's handle on its repository: `openRepository(config, cluster)` resolves the cluster's
// repository once, and every path and listing after that is the cluster's own (`repo.logical(db, id)`,
// `repo.base(id)`, `repo.wal`), instead of the cluster passed again to each call.
import type { Config } from '../config/index.js';
import { walArchiveDir } from '../lib/layout.js';
import type { BaseManifest, LogicalManifest } from '../lib/manifest.js';
import { LocalRepository } from './repository.js';
import { WalArchive } from './walArchive.js';

export class ClusterRepository extends LocalRepository {
  /** The cluster's WAL archive. */
  readonly wal: WalArchive;

  constructor(
    repository: LocalRepository,
    readonly cluster: string,
  ) {
    super(repository.name, repository.root);
    this.wal = new WalArchive(this, walArchiveDir(this.root, cluster));
  }

  /** The directory of a logical backup of `database`. */
  logical(database: string, backupId: string): string {
    return this.logicalBackupDir(this.cluster, database, backupId);
  }

  /** The directory of a base backup. */
  base(backupId: string): string {
    return this.baseBackupDir(this.cluster, backupId);
  }

  /** Committed logical backups of a database, oldest first. */
  logicalBackups(database: string): Promise<LogicalManifest[]> {
    return this.listLogicalBackups(this.cluster, database);
  }

  /** The databases with a directory under `<cluster>/logical`, sorted. */
  logicalDatabases(): Promise<string[]> {
    return this.listLogicalDatabases(this.cluster);
  }

  /** Committed base backups, oldest first. */
  baseBackups(): Promise<BaseManifest[]> {
    return this.listBaseBackups(this.cluster);
  }
}

/** The cluster's repository; fails non-retryably for an unknown cluster or one without a local repository. */
export function openRepository(config: Config, cluster: string): ClusterRepository {
  return new ClusterRepository(LocalRepository.forCluster(config, cluster), cluster);
}

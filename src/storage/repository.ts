// The local backup repository on disk (DESIGN.md layout). A backup directory without
// manifest.json is not a backup: retries and cleanups remove it. Its files are read, written and
// removed through the posix storage driver (posix.ts), the same interface as the offsite drivers.
import { join, relative, sep } from 'node:path';
import type { Config } from '../config/index.js';
import type { RepositoryConfig } from '../config/repositories.js';
import { ErrorType, nonRetryable } from '../lib/errors.js';
import { isBackupId, isSafeName } from '../lib/ids.js';
import { baseBackupDir, logicalBackupDir, logicalDatabaseDir, MANIFEST_FILE } from '../lib/layout.js';
import { parseBaseManifest, parseLogicalManifest, type BaseManifest, type LogicalManifest } from '../lib/manifest.js';
import { createPosixStorage, type PosixStorage } from './posix.js';

export class LocalRepository {
  readonly storage: PosixStorage;

  constructor(
    readonly name: string,
    readonly root: string,
  ) {
    this.storage = createPosixStorage(name, root);
  }

  /** The storage key of a path in the repository. */
  keyOf(path: string): string {
    return relative(this.root, path).split(sep).join('/');
  }

  static forCluster(config: Config, clusterName: string): LocalRepository {
    const cluster = config.clusters[clusterName];
    if (!cluster) throw nonRetryable(ErrorType.UnknownCluster, `unknown cluster "${clusterName}"`);
    const repo: RepositoryConfig | undefined = config.repositories[cluster.repository];
    if (!repo || repo.type !== 'local')
      throw nonRetryable(
        ErrorType.RepositoryUnavailable,
        `cluster "${clusterName}" names "${cluster.repository}", which is not a local repository`,
      );
    return new LocalRepository(cluster.repository, repo.path);
  }

  logicalBackupDir(cluster: string, database: string, backupId: string): string {
    return logicalBackupDir(this.root, cluster, database, backupId);
  }

  /** The manifest of a committed backup, or undefined when the directory holds no committed backup. */
  async readManifest(dir: string): Promise<LogicalManifest | undefined> {
    const text = await this.readManifestText(dir);
    return text === undefined ? undefined : parseLogicalManifest(text);
  }

  baseBackupDir(cluster: string, backupId: string): string {
    return baseBackupDir(this.root, cluster, backupId);
  }

  async readBaseManifest(dir: string): Promise<BaseManifest | undefined> {
    const text = await this.readManifestText(dir);
    return text === undefined ? undefined : parseBaseManifest(text);
  }

  /** Committed base backups of a cluster, oldest first. */
  async listBaseBackups(cluster: string): Promise<BaseManifest[]> {
    const base = join(this.root, cluster, 'base');
    const entries = await this.storage.names(this.keyOf(base));
    const manifests: BaseManifest[] = [];
    for (const id of entries.filter(isBackupId).sort()) {
      const manifest = await this.readBaseManifest(join(base, id));
      if (manifest) manifests.push(manifest);
    }
    return manifests;
  }

  /** Removes whatever an interrupted attempt left and creates the directory afresh (0700, see mkdirPrivate). */
  async prepareDir(dir: string): Promise<void> {
    await this.storage.removeTree(this.keyOf(dir));
    await this.storage.makeDir(this.keyOf(dir));
  }

  async removeDir(dir: string): Promise<void> {
    await this.storage.removeTree(this.keyOf(dir));
  }

  /** manifest.json is the commit marker: written last, atomically. */
  async commit(dir: string, manifest: LogicalManifest | BaseManifest): Promise<void> {
    await this.storage.write(this.keyOf(join(dir, MANIFEST_FILE)), JSON.stringify(manifest, null, 2) + '\n');
  }

  /** The databases with a directory under `<cluster>/logical` (whether or not a committed backup is left in it), sorted. */
  async listLogicalDatabases(cluster: string): Promise<string[]> {
    const entries = await this.storage.names(`${cluster}/logical`);
    return entries.filter(isSafeName).sort();
  }

  /** Committed logical backups of a database, oldest first. */
  async listLogicalBackups(cluster: string, database: string): Promise<LogicalManifest[]> {
    const base = logicalDatabaseDir(this.root, cluster, database);
    const entries = await this.storage.names(this.keyOf(base));
    const manifests: LogicalManifest[] = [];
    for (const id of entries.filter(isBackupId).sort()) {
      const manifest = await this.readManifest(join(base, id));
      if (manifest) manifests.push(manifest);
    }
    return manifests;
  }

  /** Free bytes where the repository lives (its nearest existing ancestor if not created yet). */
  async freeBytes(): Promise<number> {
    return (await this.storage.usage()).freeBytes;
  }

  /** Size and free bytes of the file system the repository lives on. */
  usage(): Promise<{ totalBytes: number; freeBytes: number }> {
    return this.storage.usage();
  }

  /** Refuses early when the repository cannot be created or written. */
  assertWritable(): Promise<void> {
    return this.storage.probe();
  }

  private async readManifestText(dir: string): Promise<string | undefined> {
    return (await this.storage.readIfExists(this.keyOf(join(dir, MANIFEST_FILE))))?.toString('utf8');
  }
}

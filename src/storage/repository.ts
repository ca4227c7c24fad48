// The local backup repository on disk (DESIGN.md layout). A backup directory without
// manifest.json is not a backup: retries and cleanups remove it.
import { access, constants, readFile, readdir, rm, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Config, RepositoryConfig } from '../config/index.js';
import { ErrorType, nonRetryable } from '../lib/errors.js';
import { isBackupId, isSafeName } from '../lib/ids.js';
import { baseBackupDir, logicalBackupDir, logicalDatabaseDir, MANIFEST_FILE } from '../lib/layout.js';
import { parseBaseManifest, parseLogicalManifest, type BaseManifest, type LogicalManifest } from '../lib/manifest.js';
import { mkdirPrivate, writeFileAtomic } from '../host/atomicFile.js';

export class LocalRepository {
  constructor(
    readonly name: string,
    readonly root: string,
  ) {}

  static forCluster(config: Config, clusterName: string): LocalRepository {
    const cluster = config.clusters[clusterName];
    if (!cluster) throw nonRetryable(ErrorType.UnknownCluster, `unknown cluster "${clusterName}"`);
    const repo: RepositoryConfig | undefined = config.repositories[cluster.repository];
    if (!repo || repo.type !== 'local') throw nonRetryable(ErrorType.RepositoryUnavailable, `cluster "${clusterName}" names "${cluster.repository}", which is not a local repository`);
    return new LocalRepository(cluster.repository, repo.path);
  }

  logicalBackupDir(cluster: string, database: string, backupId: string): string {
    return logicalBackupDir(this.root, cluster, database, backupId);
  }

  /** The manifest of a committed backup, or undefined when the directory holds no committed backup. */
  async readManifest(dir: string): Promise<LogicalManifest | undefined> {
    const text = await readManifestText(dir);
    return text === undefined ? undefined : parseLogicalManifest(text);
  }

  baseBackupDir(cluster: string, backupId: string): string {
    return baseBackupDir(this.root, cluster, backupId);
  }

  async readBaseManifest(dir: string): Promise<BaseManifest | undefined> {
    const text = await readManifestText(dir);
    return text === undefined ? undefined : parseBaseManifest(text);
  }

  /** Committed base backups of a cluster, oldest first. */
  async listBaseBackups(cluster: string): Promise<BaseManifest[]> {
    const base = join(this.root, cluster, 'base');
    const entries = await readdir(base).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    const manifests: BaseManifest[] = [];
    for (const id of entries.filter(isBackupId).sort()) {
      const manifest = await this.readBaseManifest(join(base, id));
      if (manifest) manifests.push(manifest);
    }
    return manifests;
  }

  /** Removes whatever an interrupted attempt left and creates the directory afresh (0700, see mkdirPrivate). */
  async prepareDir(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
    await mkdirPrivate(dir);
  }

  async removeDir(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
  }

  /** manifest.json is the commit marker: written last, atomically. */
  async commit(dir: string, manifest: LogicalManifest | BaseManifest): Promise<void> {
    await writeFileAtomic(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
  }

  /** The databases with a directory under `<cluster>/logical` (whether or not a committed backup is left in it), sorted. */
  async listLogicalDatabases(cluster: string): Promise<string[]> {
    const entries = await readdir(join(this.root, cluster, 'logical')).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    return entries.filter(isSafeName).sort();
  }

  /** Committed logical backups of a database, oldest first. */
  async listLogicalBackups(cluster: string, database: string): Promise<LogicalManifest[]> {
    const base = logicalDatabaseDir(this.root, cluster, database);
    let entries: string[];
    try {
      entries = await readdir(base);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const manifests: LogicalManifest[] = [];
    for (const id of entries.filter(isBackupId).sort()) {
      const manifest = await this.readManifest(join(base, id));
      if (manifest) manifests.push(manifest);
    }
    return manifests;
  }

  /** Free bytes where the repository lives (its nearest existing ancestor if not created yet). */
  async freeBytes(): Promise<number> {
    const dir = await this.existingAncestor(this.root);
    const s = await statfs(dir);
    return Number(s.bavail) * Number(s.bsize);
  }

  /** Size and free bytes of the file system the repository lives on. */
  async usage(): Promise<{ totalBytes: number; freeBytes: number }> {
    const s = await statfs(await this.existingAncestor(this.root));
    return { totalBytes: Number(s.blocks) * Number(s.bsize), freeBytes: Number(s.bavail) * Number(s.bsize) };
  }

  /** Refuses early when the repository cannot be created or written. */
  async assertWritable(): Promise<void> {
    const dir = await this.existingAncestor(this.root);
    try {
      await access(dir, constants.W_OK);
    } catch {
      throw nonRetryable(ErrorType.RepositoryUnavailable, `repository "${this.name}" at ${this.root} is not writable (${dir})`);
    }
  }

  private async existingAncestor(path: string): Promise<string> {
    let dir = path;
    for (;;) {
      try {
        await access(dir);
        return dir;
      } catch {
        const parent = dirname(dir);
        if (parent === dir) return dir;
        dir = parent;
      }
    }
  }
}

async function readManifestText(dir: string): Promise<string | undefined> {
  try {
    return await readFile(join(dir, MANIFEST_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

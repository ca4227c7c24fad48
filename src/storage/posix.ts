// The posix driver of the storage interface (storage.ts): a local directory, the local repository's
// home. Objects are plain files at `<root>/<key>`, private (0600 files, 0700 directories) and, as
// root, owned like the directory they are in (host/atomicFile.ts): the on-disk layout operators,
// PostgreSQL's user (wal-push) and stock tools read. Writes go as `.partial`, fsync, rename.
// The sha256 of an object lives in the repository's own records (manifests, WAL records), not
// beside it, so `list` returns none.
import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { access, chmod, copyFile, readdir, readFile, rm, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ErrorType, nonRetryable } from '../lib/errors.js';
import { PARTIAL_SUFFIX } from '../lib/layout.js';
import {
  fsyncPath,
  inheritOwner,
  mkdirPrivate,
  PRIVATE_FILE_MODE,
  writeFileAtomic,
  writePrivateAtomic,
} from '../host/atomicFile.js';
import type { RemoteEntry, RepositoryStorage, TransferProgress } from './storage.js';

export interface PosixStorage extends RepositoryStorage {
  readonly root: string;
  /** Size and free bytes of the file system the directory lives on (its nearest existing ancestor if not created yet). */
  usage(): Promise<{ totalBytes: number; freeBytes: number }>;
}

const missing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

export function createPosixStorage(name: string, root: string): PosixStorage {
  const pathOf = (key: string): string => (key === '' ? root : join(root, key));

  async function existingAncestor(path: string): Promise<string> {
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

  async function walk(dir: string, key: string, out: Map<string, RemoteEntry>): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (missing(err)) return;
      throw err;
    }
    for (const e of entries) {
      const k = key ? `${key}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(join(dir, e.name), k, out);
      else if (e.isFile() && !e.name.endsWith(PARTIAL_SUFFIX))
        out.set(k, { key: k, bytes: (await stat(join(dir, e.name))).size, recordedSha256: undefined });
    }
  }

  return {
    name,
    type: 'local',
    features: { batch: false, archiveClasses: false, recordsSha256: false, localPath: true },
    root,
    pathOf,

    /** Refuses early when the repository cannot be created or written. */
    async probe() {
      const dir = await existingAncestor(root);
      try {
        await access(dir, constants.W_OK);
      } catch {
        throw nonRetryable(ErrorType.RepositoryUnavailable, `repository "${name}" at ${root} is not writable (${dir})`);
      }
    },

    async usage() {
      const s = await statfs(await existingAncestor(root));
      return { totalBytes: Number(s.blocks) * Number(s.bsize), freeBytes: Number(s.bavail) * Number(s.bsize) };
    },

    async list(prefix) {
      // Walk only the directory part of the prefix; the rest is filtered here, as a key prefix.
      const start = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
      const out = new Map<string, RemoteEntry>();
      await walk(pathOf(start), start, out);
      for (const key of out.keys()) if (!key.startsWith(prefix)) out.delete(key);
      return out;
    },

    async put(key, localFile, _meta, progress) {
      const path = pathOf(key);
      await mkdirPrivate(dirname(path));
      await writePrivateAtomic(path, async (handle) => {
        // One chunk at a time: memory stays bounded whatever the file's size.
        let total = 0;
        for await (const chunk of createReadStream(localFile)) {
          for (let rest = chunk as Buffer; rest.length > 0;)
            rest = rest.subarray((await handle.write(rest)).bytesWritten);
          progress?.((total += (chunk as Buffer).length));
        }
      });
    },

    async contentSha256(keys, progress?: TransferProgress) {
      const sums = new Map<string, string>();
      let total = 0;
      for (const key of keys) {
        const hash = createHash('sha256');
        try {
          for await (const chunk of createReadStream(pathOf(key))) {
            hash.update(chunk as Buffer);
            progress?.((total += (chunk as Buffer).length));
          }
        } catch (err) {
          if (missing(err)) continue;
          throw err;
        }
        sums.set(key, hash.digest('hex'));
      }
      return sums;
    },

    /** Like every file pgwarden writes into a repository: 0600 and, as root, owned like its directory. */
    async get(key, localFile) {
      await copyFile(pathOf(key), localFile);
      await chmod(localFile, PRIVATE_FILE_MODE);
      await inheritOwner(localFile);
      await fsyncPath(localFile);
    },

    read: (key) => readFile(pathOf(key)),

    async readIfExists(key) {
      try {
        return await readFile(pathOf(key));
      } catch (err) {
        if (missing(err)) return undefined;
        throw err;
      }
    },

    write: (key, content) => writeFileAtomic(pathOf(key), content),

    async names(prefix, only) {
      try {
        const entries = await readdir(pathOf(prefix), { withFileTypes: true });
        return entries.filter((e) => only !== 'dirs' || e.isDirectory()).map((e) => e.name);
      } catch (err) {
        if (missing(err)) return [];
        throw err;
      }
    },

    makeDir: (prefix) => mkdirPrivate(pathOf(prefix)),

    removeTree: (prefix) => rm(pathOf(prefix), { recursive: true, force: true }),

    async remove(keys) {
      for (const key of keys) await rm(pathOf(key), { force: true });
    },

    async close() {
      // Nothing held open between calls.
    },
  };
}

// Durable small writes with Node built-ins only (wal-push loads this once per WAL segment).
import { constants } from 'node:fs';
import { chmod, lchown, lstat, mkdir, open, rename, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { PARTIAL_SUFFIX } from '../lib/layout.js';

/** Everything pgwarden writes is private: a backup holds every row and the role password hashes. */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

const isRoot = () => process.getuid?.() === 0;

/**
 * As root, `path` takes the owner of the directory it is in: everything in a repository belongs to
 * the repository directory's owner (PostgreSQL's user, who runs wal-push), whichever of root or that
 * user wrote it, so both can read it at 0600. Whoever owns a directory can replace its files anyway,
 * so this gives that user nothing new; a symbolic link is never followed. A no-op for any other
 * user (its files are its own).
 */
export async function inheritOwner(path: string, handle?: FileHandle): Promise<void> {
  if (!isRoot()) return;
  const parent = await stat(dirname(path));
  const own = handle ? await handle.stat() : await lstat(path);
  if (own.uid === parent.uid && own.gid === parent.gid) return;
  if (handle) await handle.chown(parent.uid, parent.gid);
  else await lchown(path, parent.uid, parent.gid);
}

/**
 * `mkdir -p -m 0700`: every directory it creates is private and, as root, owned like its parent
 * (inheritOwner). Directories that exist already are left as they are.
 */
export async function mkdirPrivate(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (first === undefined) return;
  // Exactly 0700 whatever the umask (mkdir's mode is masked by it).
  let path = first;
  for (const part of ['', ...relative(first, dir).split(sep).filter(Boolean)]) {
    path = part ? join(path, part) : path;
    await chmod(path, PRIVATE_DIR_MODE);
    await inheritOwner(path);
  }
}

export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes a file atomically: `.partial`, fsync, rename, fsync the directory. The file is 0600 (a
 * leftover `.partial` of another mode too) and, as root, takes the directory's owner (inheritOwner)
 * before it appears under its name. A `.partial` that is a symbolic link is refused. `write` fills
 * the open `.partial`; the one write path of writeFileAtomic and of the posix driver's `put`.
 */
export async function writePrivateAtomic(path: string, write: (handle: FileHandle) => Promise<void>): Promise<void> {
  const partial = path + PARTIAL_SUFFIX;
  const handle = await open(
    partial,
    constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
    PRIVATE_FILE_MODE,
  );
  try {
    await handle.chmod(PRIVATE_FILE_MODE);
    await inheritOwner(partial, handle);
    await write(handle);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(partial, path);
  await fsyncPath(dirname(path));
}

/** Writes a small file atomically and privately (writePrivateAtomic). */
export async function writeFileAtomic(path: string, content: string | Buffer): Promise<void> {
  await writePrivateAtomic(path, (handle) => handle.writeFile(content));
}

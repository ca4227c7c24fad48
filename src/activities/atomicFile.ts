// Durable small writes with Node built-ins only (wal-push loads this once per WAL segment).
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PARTIAL_SUFFIX } from '../lib/layout.js';

export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes a small file atomically: `.partial`, fsync, rename, fsync the directory. */
export async function writeFileAtomic(path: string, content: string | Buffer): Promise<void> {
  const partial = path + PARTIAL_SUFFIX;
  const handle = await open(partial, 'w');
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(partial, path);
  await fsyncPath(dirname(path));
}

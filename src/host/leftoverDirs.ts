// Directories that processes killed mid-run (SIGKILL, power loss) leave in /tmp: wal-push's gpg
// homes, the worker's keyrings, gpg --encrypt homes and dump FIFO directories. Built-ins only
// (wal-push loads it).
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { processStartTime } from './processStart.js';

/**
 * The directories in `dir` named by `pattern` (its first group: the pid of the process that made
 * the directory) whose process is gone; a name without a pid counts as gone once untouched for
 * `unnamedMaxAgeMs`. This user's only, never a symlink: another user's directory is not ours to
 * judge, and often not ours to remove (a root worker's, mode 0700, is unreadable to the PostgreSQL
 * user's wal-get). Callers remove them best effort: a failure is never theirs.
 */
export function leftoverDirs(dir: string, pattern: RegExp, unnamedMaxAgeMs = Infinity): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const uid = process.getuid?.();
  const found: string[] = [];
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m) continue;
    const path = join(dir, name);
    try {
      const st = lstatSync(path);
      if (!st.isDirectory() || st.uid !== uid) continue;
      const gone = m[1] ? processStartTime(Number(m[1])) === undefined : Date.now() - st.mtimeMs > unnamedMaxAgeMs;
      if (gone) found.push(path);
    } catch {
      // Removed meanwhile: nothing left to look at.
    }
  }
  return found;
}

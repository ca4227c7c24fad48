// The throwaway gpg home directories that pushes leave behind when they are killed mid-push.
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processStartTime } from '../host/processStart.js';
import { GPG_HOME_PREFIX } from './push.js';

/** A directory of the older unnamed form (`pgwarden-walpush-XXXXXX`) this old is no push's any more. */
const UNNAMED_HOME_MAX_AGE_MS = 60 * 60_000;

/**
 * The gpg home directories of pushes killed mid-push (a push removes its own when it ends): this
 * user's `pgwarden-walpush-<pid>-*` whose process is gone, never one of a push still running.
 * Returns the paths removed.
 */
export function removeLeftoverGpgHomes(dir = tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = new RegExp(`^${GPG_HOME_PREFIX}(?:(\\d+)-)?[A-Za-z0-9]{6}$`).exec(name);
    if (!m) continue;
    const path = join(dir, name);
    try {
      const st = lstatSync(path);
      if (!st.isDirectory() || st.uid !== process.getuid?.()) continue; // another user's: not ours to judge
      const gone = m[1]
        ? processStartTime(Number(m[1])) === undefined
        : Date.now() - st.mtimeMs > UNNAMED_HOME_MAX_AGE_MS;
      if (!gone) continue;
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch {
      // Removed meanwhile, or unreadable: the next pusher looks again.
    }
  }
  return removed;
}

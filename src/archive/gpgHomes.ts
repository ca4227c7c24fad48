// The throwaway gpg home directories that pushes leave behind when they are killed mid-push.
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { leftoverDirs } from '../host/leftoverDirs.js';
import { GPG_HOME_PREFIX } from './push.js';

/** A directory of the older unnamed form (`pgwarden-walpush-XXXXXX`) this old is no push's any more. */
const UNNAMED_HOME_MAX_AGE_MS = 60 * 60_000;

/**
 * The gpg home directories of pushes killed mid-push (a push removes its own when it ends): this
 * user's `pgwarden-walpush-<pid>-*` whose process is gone, never one of a push still running.
 * Returns the paths removed.
 */
export function removeLeftoverGpgHomes(dir = tmpdir()): string[] {
  const pattern = new RegExp(`^${GPG_HOME_PREFIX}(?:(\\d+)-)?[A-Za-z0-9]{6}$`);
  return leftoverDirs(dir, pattern, UNNAMED_HOME_MAX_AGE_MS).filter((path) => {
    try {
      rmSync(path, { recursive: true, force: true });
      return true;
    } catch {
      return false; // unreadable: the next pusher looks again
    }
  });
}

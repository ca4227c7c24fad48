// Shared by the prefetching wal-get's tests (walGetAsync, walGetScript): its fetcher's process and
// the PostgreSQL user's ids.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

/** The pid in the spool's fetcher lock; 0 when none. */
export const fetcherPid = async (spool: string): Promise<number> =>
  (JSON.parse(await readFile(join(spool, 'fetcher.pid'), 'utf8').catch(() => '{}')) as { pid?: number }).pid ?? 0;

export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export async function until(what: string, check: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The PostgreSQL user's uid and gid when the tests run as root (restore_command runs as that user); else undefined. */
export const postgresIds = async (): Promise<{ uid: number; gid: number } | undefined> =>
  process.getuid?.() === 0
    ? {
        uid: Number((await execa('id', ['-u', 'postgres'])).stdout),
        gid: Number((await execa('id', ['-g', 'postgres'])).stdout),
      }
    : undefined;

// Shared by the prefetching wal-get's tests (walGetAsync, walGetScript): its fetcher's process and
// the PostgreSQL user's ids.
import { randomBytes } from 'node:crypto';
import { chmod, chown, copyFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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

/** A copy of the private key the PostgreSQL user can read (restore_command and the fetcher run as that user), 0600. */
export async function keyForPostgres(privateKey: string, label: string): Promise<string> {
  const file = join(tmpdir(), `pgwarden-${label}-key-${randomBytes(4).toString('hex')}.asc`);
  await copyFile(privateKey, file);
  const owner = await postgresIds();
  if (owner) await chown(file, owner.uid, owner.gid);
  await chmod(file, 0o600);
  return file;
}

// The rsync driver's batched upload against a real sshd, as offsiteSync uses it (what the remote
// lacks, in commit order): an rsync killed mid-batch and a sidecar write that fails leave no object
// without its sha256 record or with one that does not match, never a manifest before its artifacts,
// nothing staged that lists as an object; the next run completes the batch, resuming what was staged
// instead of sending it again. Paths that need quoting on both sides (spaces, quotes, `$(...)`, a
// database directory starting with '-') go through.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRsyncStore } from '../../src/storage/rsync.js';
import type { Storage, UploadObject } from '../../src/storage/storage.js';
import type { RsyncRepositoryConfig } from '../../src/config/repositories.js';
import { ErrorType } from '../../src/lib/errors.js';
import { missingOnRemote, type LocalObject } from '../../src/lib/offsite.js';
import { startSshd, type SshServer } from '../helpers/sshd.js';

const STAGING = '.pgwarden-incoming';
const BACKUP = 'main/logical/-app/20261122T020000Z';
const WAL_FILES = 30;

let server: SshServer;
let dir: string;
let localRoot: string;
let remoteRoot: string;
const objects: LocalObject[] = [];

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function store(overrides: Partial<RsyncRepositoryConfig> = {}): Storage {
  return createRsyncStore('dr-host', {
    type: 'rsync',
    destination: `${server.user}@${server.host}:${remoteRoot}`,
    port: server.port,
    identityFile: server.identityFile,
    knownHostsFile: server.knownHostsFile,
    retentionDays: 90,
    ...overrides,
  });
}

async function localObject(key: string, content: Buffer, marker = false): Promise<void> {
  const file = join(localRoot, key);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, content);
  objects.push({
    key,
    kind: key.split('/')[1] as LocalObject['kind'],
    bytes: content.length,
    sha256: sha256(content),
    marker,
    committedAt: '2026-11-22T02:00:00Z',
  });
}

/** What offsiteSync does: upload what the remote lacks, in commit order. Returns the keys committed. */
async function sync(s: Storage, progress?: (bytes: number) => void): Promise<{ committed: string[]; error?: unknown }> {
  const missing = missingOnRemote(objects, await s.list('main/'));
  const committed: string[] = [];
  const error = await s.putBatch!(localRoot, missing, {
    progress,
    committed: (o: UploadObject) => committed.push(o.key),
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { committed, error };
}

/** Every file under `root`, relative, with '/'. */
async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => relative(root, join(e.parentPath, e.name)));
}

/**
 * The remote as a reader sees it, outside the staging directory: every object has its sidecar and
 * the sidecar matches the object's bytes; a manifest is there only with all its artifacts. Returns
 * the objects in place.
 */
async function assertRemoteConsistent(): Promise<string[]> {
  const files = (await filesUnder(remoteRoot)).filter((f) => !f.startsWith(`${STAGING}/`));
  const inPlace = files.filter((f) => !f.endsWith('.sha256'));
  for (const key of inPlace) {
    const sidecar = await readFile(join(remoteRoot, `${key}.sha256`), 'utf8').catch(() => undefined);
    expect(sidecar, `${key} has no sha256 record`).toBeDefined();
    expect(sidecar, `${key}'s sha256 record does not match its bytes`).toBe(
      `${sha256(await readFile(join(remoteRoot, key)))}\n`,
    );
    expect(objects.map((o) => o.key)).toContain(key);
  }
  if (inPlace.includes(`${BACKUP}/manifest.json`)) expect(inPlace).toContain(`${BACKUP}/dump.pgdump.zst.gpg`);
  // The listing shows exactly the objects in place, each with its record: nothing staged or partial.
  const listed = await store().list('main/');
  expect([...listed.keys()].sort()).toEqual([...inPlace].sort());
  for (const [key, entry] of listed) expect(entry.recordedSha256).toBe(objects.find((o) => o.key === key)!.sha256);
  return inPlace;
}

/** The inode of each complete file in the staging directory (rsync's own temp and partial files aside). */
async function stagedInodes(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const f of await filesUnder(join(remoteRoot, STAGING))) {
    if (f.includes('.rsync-partial/') || f.split('/').at(-1)!.startsWith('.')) continue;
    out.set(f, (await stat(join(remoteRoot, STAGING, f))).ino);
  }
  return out;
}

/** SIGKILL for this process's rsync child (the transfer under way). */
function killRsync(): void {
  const children = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  const pid = children
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find(([, comm]) => comm === 'rsync')?.[0];
  if (!pid) throw new Error(`no rsync child of ${process.pid}: ${children}`);
  process.kill(Number(pid), 'SIGKILL');
}

beforeAll(async () => {
  server = await startSshd();
  dir = await mkdtemp(join(tmpdir(), 'pgwarden-rsync-batch-'));
  localRoot = join(dir, `local "repo" it's $HOME`);
  remoteRoot = join(server.remoteRoot, `dr 'copies' $(touch pwned) "x"`);
  await localObject(`${BACKUP}/dump.pgdump.zst.gpg`, randomBytes(512 * 1024));
  await localObject(`${BACKUP}/manifest.json`, Buffer.from('{"backupId":"20261122T020000Z"}\n'), true);
  for (let i = 1; i <= WAL_FILES; i++) {
    const name = `0000000100000000000000${i.toString(16).toUpperCase().padStart(2, '0')}`;
    await localObject(`main/wal/${name}.zst.gpg`, randomBytes(128 * 1024));
    await localObject(`main/wal/${name}.json`, Buffer.from(`{"name":"${name}"}\n`));
  }
  await store().probe();
});

afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('rsync offsite store: batched uploads', () => {
  it('an rsync killed mid-batch leaves nothing half-done in view; the next run completes it without sending the staged files again', async () => {
    let killed = false;
    // 1 MiB/s: the batch (4.3 MiB) takes about 4 s; killed once 1 MiB is sent.
    const first = await sync(store({ maxRate: 1024 * 1024 }), (bytes) => {
      if (!killed && bytes >= 1024 * 1024) {
        killed = true;
        killRsync();
      }
    });
    expect(killed).toBe(true);
    expect(first.error).toBeInstanceOf(ApplicationFailure);
    expect((first.error as ApplicationFailure).type).toBe(ErrorType.OffsiteUnavailable);
    expect((first.error as ApplicationFailure).nonRetryable).toBe(false);
    expect(first.committed).toEqual([]);
    expect(await assertRemoteConsistent()).toEqual([]);
    const staged = await stagedInodes();
    expect(staged.size).toBeGreaterThan(0);
    expect(staged.size).toBeLessThan(objects.length);

    const second = await sync(store());
    expect(second.error).toBeUndefined();
    expect(second.committed.sort()).toEqual(objects.map((o) => o.key).sort());
    expect((await assertRemoteConsistent()).sort()).toEqual(objects.map((o) => o.key).sort());
    // Staged complete by the killed run: renamed into place, not sent again.
    for (const [key, ino] of staged) expect((await stat(join(remoteRoot, key))).ino, key).toBe(ino);
    expect(await filesUnder(join(remoteRoot, STAGING))).toEqual([]);
    // The odd remote path reached sh and rsync as one word each.
    expect(await stat(join(server.remoteRoot, 'pwned')).catch(() => undefined)).toBeUndefined();
    expect(await stat(join(process.cwd(), 'pwned')).catch(() => undefined)).toBeUndefined();

    // Nothing left to send: a third run commits nothing and changes nothing.
    const before = (await stat(join(remoteRoot, `${BACKUP}/dump.pgdump.zst.gpg`))).ino;
    expect(await sync(store())).toEqual({ committed: [], error: undefined });
    expect((await stat(join(remoteRoot, `${BACKUP}/dump.pgdump.zst.gpg`))).ino).toBe(before);
  });

  it('a failing sidecar write stops the batch there, in commit order; the next run completes it', async () => {
    await rm(remoteRoot, { recursive: true, force: true });
    await store().probe();
    // The 20th WAL record's sidecar cannot be written (a directory squats its name).
    const blocked = 'main/wal/000000010000000000000014.json';
    await mkdir(join(remoteRoot, `${blocked}.sha256`), { recursive: true });
    const order = missingOnRemote(objects, new Map()).map((o) => o.key);

    const first = await sync(store());
    expect((first.error as ApplicationFailure).type).toBe(ErrorType.OffsiteUnavailable);
    expect((first.error as ApplicationFailure).message).toContain(
      `putting uploaded objects into place failed at ${blocked}`,
    );
    // Everything before the blocked record in commit order is in place, nothing after it: WAL
    // files and the dump, some records, never the manifest.
    expect(first.committed).toEqual(order.slice(0, order.indexOf(blocked)));
    expect(first.committed).toContain(`${BACKUP}/dump.pgdump.zst.gpg`);
    expect((await assertRemoteConsistent()).sort()).toEqual([...first.committed].sort());

    await rm(join(remoteRoot, `${blocked}.sha256`), { recursive: true });
    const second = await sync(store());
    expect(second.error).toBeUndefined();
    expect(second.committed).toEqual(order.slice(order.indexOf(blocked)));
    expect((await assertRemoteConsistent()).sort()).toEqual([...order].sort());
  });

  it('an object that appeared under a key after the listing is never replaced, nor given a record', async () => {
    const object = objects.find((o) => o.key.endsWith('1E.zst.gpg'))!;
    await rm(join(remoteRoot, object.key));
    await rm(join(remoteRoot, `${object.key}.sha256`));
    await writeFile(join(remoteRoot, object.key), "not pgwarden's");
    const committed: string[] = [];
    await store().putBatch!(localRoot, [object], { committed: (o) => committed.push(o.key) });
    expect(committed).toEqual([]);
    expect(await readFile(join(remoteRoot, object.key), 'utf8')).toBe("not pgwarden's");
    await expect(stat(join(remoteRoot, `${object.key}.sha256`))).rejects.toThrow(/ENOENT/);
    expect(await filesUnder(join(remoteRoot, STAGING))).toEqual([]);
  });
});

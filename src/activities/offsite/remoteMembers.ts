// The members of each remote backup and WAL group, for the offsite check (checkOffsite, sync.ts):
// from the local repository's lists, or read from the small remote files (manifests, WAL records).
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ApplicationFailure } from '@temporalio/common';
import { MANIFEST_FILE } from '../../lib/layout.js';
import { parseBaseManifest, parseLogicalManifest } from '../../lib/manifest.js';
import { groupOf, type GroupMembers, type LocalObject, type RemoteEntry } from '../../lib/offsite.js';
import { remoteBackups } from '../../lib/offsiteRetention.js';
import type { Storage } from '../../storage/storage.js';

/**
 * What each committed remote backup and WAL file consists of, for the check: a backup's artifacts
 * from its manifest (the local one's list when the backup is here too: a manifest's artifacts never
 * change after commit; else the remote's manifest, read), a WAL file's stored name from its local
 * record, or from the remote record when its group holds more than the record and one file.
 * (A WAL-only run knows no local backup: it reads no manifest.)
 */
export async function remoteMembers(
  store: Storage,
  remote: ReadonlyMap<string, RemoteEntry>,
  inventory: readonly LocalObject[],
  options: { readManifests: boolean },
): Promise<Map<string, GroupMembers>> {
  const localFiles = new Map<string, string[]>();
  for (const o of inventory) {
    const group = groupOf(o.key);
    localFiles.set(group, [...(localFiles.get(group) ?? []), o.key.split('/').at(-1)!]);
  }
  const members = new Map<string, GroupMembers>();
  const keys = [...remote.keys()];
  for (const b of remoteBackups(keys)) {
    const files = localFiles.get(b.dir);
    // A WAL-only run's inventory has no backups: their manifests are read by the daily full check.
    if (!files && !options.readManifests) continue;
    members.set(
      b.dir,
      files
        ? { files }
        : await readRemoteList(store, `${b.dir}/${MANIFEST_FILE}`, (text) => {
            const m = b.kind === 'base' ? parseBaseManifest(text) : parseLogicalManifest(text);
            return [MANIFEST_FILE, ...m.artifacts.map((a) => a.name)];
          }),
    );
  }
  const walGroups = new Map<string, string[]>();
  for (const k of keys.filter((k) => k.split('/')[1] === 'wal'))
    walGroups.set(groupOf(k), [...(walGroups.get(groupOf(k)) ?? []), k]);
  for (const [group, groupKeys] of walGroups) {
    const record = `${group}.json`;
    if (!remote.has(record)) continue; // no record: `unknown` already
    const files = localFiles.get(group);
    if (files) members.set(group, { files });
    else if (groupKeys.length > 2) {
      members.set(
        group,
        await readRemoteList(store, record, (text) => [
          record.split('/').at(-1)!,
          String((JSON.parse(text) as { stored?: unknown }).stored),
        ]),
      );
    }
  }
  return members;
}

/** A small remote file (a manifest, a WAL record) read and turned into its list of members. */
async function readRemoteList(store: Storage, key: string, parse: (text: string) => string[]): Promise<GroupMembers> {
  const file = join(tmpdir(), `pgwarden-members-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  try {
    await store.get(key, file);
    return { files: parse(await readFile(file, 'utf8')) };
  } catch (err) {
    // Trouble reaching the remote is retried; a refusal or bad content is reported.
    if (err instanceof ApplicationFailure && !err.nonRetryable) throw err;
    return { unreadable: `cannot be read or parsed: ${(err as Error).message.split('\n')[0]}` };
  } finally {
    await rm(file, { force: true });
  }
}

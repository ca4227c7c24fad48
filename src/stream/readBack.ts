// The read-back chain, the way back out of storeArtifact: the stored file → gpg --decrypt → zstd -d
// → the program that reads it (pg_restore, tar), heartbeating the bytes read. Verify's restore of a
// dump and PITR's staging of a base backup both read a backup this way.
import type { Readable } from 'node:stream';
import type { DecryptionKey } from './decryptionKey.js';
import { openKeyring } from './gpg.js';
import { feedFile } from './pipeline.js';
import { startChain, startTool, TOOL_ENV, type Tool } from './processes.js';

export interface ReadBackOptions {
  /** The stored file. */
  path: string;
  /** The worker's key, when the file is encrypted. */
  key?: DecryptionKey;
  /** How the file was compressed (its manifest's compression.algorithm). */
  compression: 'zstd' | 'none';
  /** Starts the program that reads the plain bytes on its stdin. */
  reader: (stdin: 'pipe' | Readable) => Tool;
  signal: AbortSignal;
  /** Bytes per second the file is read at, at most. */
  maxRate?: number;
  /** Called every 2 s with the bytes read so far (the activity's heartbeat). */
  heartbeat: (bytes: number) => void;
}

/** How each part ended: the file's feed first (sha256 and size of what was read), then each process in order. */
export type ReadBackResults = [
  PromiseSettledResult<{ sha256: string; bytes: number }>,
  ...PromiseSettledResult<unknown>[],
];

/**
 * Runs the chain to its end and says how each part ended; the caller judges (a corrupt file shows
 * as a decryption or reader error). The throwaway keyring is removed whatever happens.
 */
export async function readBack(o: ReadBackOptions): Promise<ReadBackResults> {
  const { signal } = o;
  const keyring = o.key ? await openKeyring(o.key.file) : undefined;
  let read = 0;
  const timer = setInterval(() => o.heartbeat(read), 2000);
  try {
    // A chain of processes joined by kernel pipes; this process only reads the file into the first
    // (hashing it on the way: one read of the stored bytes) and never sees the plaintext.
    const tools = startChain([
      ...(keyring ? [() => keyring.decrypt({ passphrase: o.key!.passphrase, signal })] : []),
      ...(o.compression === 'zstd'
        ? [
            (stdin: 'pipe' | Readable) =>
              startTool('zstd -d', 'zstd', ['-d', '-c', '-q'], { stdin, env: TOOL_ENV, signal }),
          ]
        : []),
      o.reader,
    ]);
    const feed = feedFile(o.path, tools[0]!.child.stdin!, { maxRate: o.maxRate, signal, progress: (b) => (read = b) });
    return (await Promise.allSettled([feed, ...tools.map((t) => t.exited)])) as ReadBackResults;
  } finally {
    clearInterval(timer);
    await keyring?.remove();
  }
}

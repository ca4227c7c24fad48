// wal-push, the archive_command: PostgreSQL starts it once per 16 MiB WAL segment and waits, so
// it loads Node built-ins only (no zod, openpgp or Temporal: those cost ~250 ms at every start)
// and encrypts with stock gpg straight to the recipients' public key files (no keyring import).
// zstd and gpg run as a process chain started before the segment is read, so their start-up
// overlaps the read and the sha256 taken here.
//
// What it stores is what the rest of pgwarden reads (walArchive.ts): `<name>[.zst][.gpg]`, written
// as .partial, fsynced, renamed, then its record `<name>.json`, the commit marker.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorType } from '../lib/errorTypes.js';
import { artifactName, walRecordName } from '../lib/layout.js';
import { isWalFileName, WAL_SEGMENT_BYTES } from '../lib/wal.js';
import { writeFileAtomic } from './atomicFile.js';


/** What wal-push needs from the config, nothing more. */
export interface WalPushSettings {
  /** The cluster's WAL archive directory. */
  archiveDir: string;
  compression: { algorithm: 'zstd' | 'none'; level: number };
  /** Public key files; encrypted to all of them when set. */
  recipients?: string[];
}

export interface PushResult {
  name: string;
  /** `stored`: written now; `identical`: already archived with the same content. */
  outcome: 'stored' | 'identical';
  bytes: number;
}

/** A failure with the type operators see elsewhere (WalConflict, InvalidInput, ...). */
export class WalPushError extends Error {
  constructor(
    readonly type: ErrorType,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Success only once the file is durably stored and committed. Re-pushing the same content is
 * success (PostgreSQL retries after a crash); different content under an archived name is
 * refused, since it means two clusters share an archive or a timeline went wrong.
 */
export async function pushWalFile(settings: WalPushSettings, source: string, name: string, now = new Date()): Promise<PushResult> {
  if (!isWalFileName(name)) throw new WalPushError(ErrorType.InvalidInput, `"${name}" is not a WAL file name`);
  // The encoder processes start first and wait for input: their start-up overlaps the read and hash.
  const encoder = startEncoder(settings);
  try {
    return await push(settings, source, name, now, encoder);
  } finally {
    await encoder?.cancel(); // a no-op once they have finished
  }
}

async function push(settings: WalPushSettings, source: string, name: string, now: Date, encoder: Encoder | undefined): Promise<PushResult> {
  const raw = await readFile(source);
  if (/^[0-9A-F]{24}$/.test(name) && raw.length !== WAL_SEGMENT_BYTES) {
    throw new WalPushError(ErrorType.InvalidInput, `${source} is ${raw.length} bytes; pgwarden archives 16 MiB WAL segments only`);
  }
  // Fed now, hashed here meanwhile; dropped (cancelled) if the segment turns out to be archived already.
  const encoding = encoder?.encode(raw);
  encoding?.catch(() => undefined);
  const rawSha256 = createHash('sha256').update(raw).digest('hex');
  const existing = await readRecord(settings.archiveDir, name);
  if (existing) {
    if (existing.rawSha256 !== rawSha256) {
      throw new WalPushError(ErrorType.WalConflict, `WAL file ${name} is archived already with different content (sha256 ${existing.rawSha256}, this one ${rawSha256}); refusing to overwrite it`);
    }
    const present = await stat(join(settings.archiveDir, existing.stored)).then((s) => s.size === existing.bytes, () => false);
    if (present) return { name, outcome: 'identical', bytes: existing.bytes };
    // The record survived but its data did not (a damaged archive): store the same bytes again below.
  }
  const stored = encoding ? await encoding : raw;
  // Belt and braces: an encoder that exits 0 with no output must not become an archived segment.
  if (stored.length === 0) throw new WalPushError(ErrorType.IntegrityError, `encoding ${name} produced no output`);
  const { compression } = settings;
  const encrypted = !!settings.recipients;
  const storedName = artifactName(name, compression.algorithm, encrypted);
  await mkdir(settings.archiveDir, { recursive: true });
  await writeFileAtomic(join(settings.archiveDir, storedName), stored);
  const record = {
    name,
    stored: storedName,
    bytes: stored.length,
    sha256: createHash('sha256').update(stored).digest('hex'),
    rawBytes: raw.length,
    rawSha256,
    compression: compression.algorithm,
    encrypted,
    archivedAt: now.toISOString(),
  };
  await writeFileAtomic(join(settings.archiveDir, walRecordName(name)), JSON.stringify(record) + '\n');
  return { name, outcome: 'stored', bytes: stored.length };
}

/** The fields of an existing record wal-push compares (the full schema is checked where records are read for restore). */
async function readRecord(dir: string, name: string): Promise<{ stored: string; bytes: number; rawSha256: string } | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, walRecordName(name)), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const r = JSON.parse(text) as Record<string, unknown>;
  if (typeof r.stored !== 'string' || typeof r.bytes !== 'number' || typeof r.rawSha256 !== 'string') {
    throw new WalPushError(ErrorType.IntegrityError, `the archive record of ${name} is unreadable (${join(dir, walRecordName(name))})`);
  }
  return { stored: r.stored, bytes: r.bytes, rawSha256: r.rawSha256 };
}

interface Encoder {
  encode(raw: Uint8Array): Promise<Buffer>;
  cancel(): Promise<void>;
}

/**
 * `zstd -T0` piped into `gpg --encrypt --recipient-file <key>...` over a kernel pipe (either
 * alone when only one is configured): zstd compresses on every core while this process hashes.
 * gpg writes SEIPD with MDC and no OpenPGP compression, like the rest of pgwarden's output, from a
 * throwaway home directory (the postgres user's own GnuPG state stays out of it; no agent needed).
 */
function startEncoder(settings: WalPushSettings): Encoder | undefined {
  const tools: { name: string; args: string[] }[] = [];
  if (settings.compression.algorithm === 'zstd') tools.push({ name: 'zstd', args: [`-${settings.compression.level}`, '-T0', '-q', '-c'] });
  let home: string | undefined;
  if (settings.recipients) {
    home = mkdtempSync(join(tmpdir(), 'pgwarden-walpush-'));
    const args = ['--homedir', home, '--batch', '--no-tty', '--quiet', '--no-autostart', '--trust-model', 'always', '--compress-algo', 'none'];
    for (const file of settings.recipients) args.push('--recipient-file', file);
    tools.push({ name: 'gpg', args: [...args, '--output', '-', '--encrypt'] });
  }
  if (tools.length === 0) return undefined;
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const children: ChildProcess[] = [];
  const stderr: string[] = [];
  for (const [i, tool] of tools.entries()) {
    const stdin = i === 0 ? 'pipe' : children[i - 1]!.stdout!;
    const child = spawn(tool.name, tool.args, { stdio: [stdin, 'pipe', 'pipe'], env });
    // gpg holds its own copy of the pipe now: this process's copy would keep zstd's stdout open forever.
    if (i > 0) children[i - 1]!.stdout!.destroy();
    stderr.push('');
    child.stderr!.on('data', (d: Buffer) => (stderr[i] += d.toString()));
    children.push(child);
  }
  const out: Buffer[] = [];
  children.at(-1)!.stdout!.on('data', (d: Buffer) => out.push(d));
  children[0]!.stdin!.on('error', () => undefined); // a tool failing early closes its stdin; its exit code says why
  const exits = Promise.all(
    children.map((child) => new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    })),
  ).finally(() => home && rm(home, { recursive: true, force: true }));
  exits.catch(() => undefined); // awaited by encode or cancel
  return {
    async encode(raw) {
      children[0]!.stdin!.end(raw);
      const codes = await exits;
      const failed = codes.findIndex((code) => code !== 0);
      if (failed >= 0) {
        const what = tools[failed]!.name === 'gpg' ? `gpg --encrypt to ${settings.recipients!.join(', ')}` : tools[failed]!.name;
        throw new WalPushError(tools[failed]!.name === 'gpg' ? ErrorType.KeyUnreadable : ErrorType.InvalidInput, `${what} failed (exit ${codes[failed]}): ${stderr[failed]!.trim().split('\n').slice(-3).join(' | ')}`);
      }
      return Buffer.concat(out);
    },
    async cancel() {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill();
      await exits.catch(() => undefined);
    },
  };
}

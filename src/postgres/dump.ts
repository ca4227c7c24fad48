// The dump itself: pg_dump → zstd → tee → gpg --encrypt, joined by kernel pipes, → this process,
// which only hashes the stored bytes (sha256) into the repository. tee gives a copy of the
// compressed bytes to `zstd -d | pg_restore --list`, which must read the archive's table of
// contents (the sanity check).
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import type pg from 'pg';
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorType, nonRetryable, retryable } from '../lib/errors.js';
import { chainFailed, failureCause } from '../stream/failureCause.js';
import type { Artifact, TableCount } from '../lib/manifest.js';
import { prepareGpgEncrypt, type GpgEncrypt, type PreparedGpgEncrypt } from '../stream/gpgEncrypt.js';
import { storeArtifact, type Compression, type RecipientKeys, type Sha256Stage } from '../stream/pipeline.js';
import * as postgres from './connection.js';
import { startChain, startTool, TOOL_ENV, ToolError, type Tool } from '../stream/processes.js';

export interface DumpArgs {
  /** The connection whose transaction exported `snapshot`; row counts run in it. */
  client: pg.Client;
  snapshot: string;
  path: string;
  name: string;
  /** Path of a PostgreSQL client tool for this server. */
  tool: (name: string) => string;
  env: Record<string, string>;
  compression: Compression;
  recipients?: RecipientKeys;
  signal: AbortSignal;
  maxRate?: number;
  stored: Sha256Stage;
}

export interface DumpResult {
  artifact: Artifact;
  tocEntries: number;
  tables: TableCount[];
}

export async function dumpDatabase(args: DumpArgs): Promise<DumpResult> {
  // Named like the worker's throwaway gpg homes (`/tmp/pgwarden-gpg-<pid>-*`): should this worker
  // die mid-dump, the next keyring it or another worker opens removes the directory (stream/gpg.ts).
  const fifoDir = await mkdtemp(`/tmp/pgwarden-gpg-${process.pid}-`);
  try {
    const fifo = join(fifoDir, 'toc');
    await execa('mkfifo', ['-m', '600', fifo], { env: TOOL_ENV, extendEnv: false });
    // gpg's home and keys before any process starts: should that throw, nothing is left running
    // (pg_dump holding its snapshot) with nobody to wait for it.
    const prepared = args.recipients && prepareGpgEncrypt(args.recipients.keys.map((key) => key.armor()));
    try {
      return await dumpThrough(args, fifo, prepared);
    } finally {
      prepared?.discard();
    }
  } finally {
    await rm(fifoDir, { recursive: true, force: true });
  }
}

async function dumpThrough(args: DumpArgs, fifo: string, prepared?: PreparedGpgEncrypt): Promise<DumpResult> {
  const { signal } = args;
  const pgDump = startTool(
    'pg_dump',
    args.tool('pg_dump'),
    ['--format=custom', '--compress=0', `--snapshot=${args.snapshot}`, '--no-password'],
    {
      env: args.env,
      signal,
    },
  );
  let source: Readable = pgDump.child.stdout!;
  let zstd: Tool | undefined;
  if (args.compression.algorithm === 'zstd') {
    // -T0: zstd compresses on every core, beside pg_dump and the encryption here.
    zstd = startTool('zstd', 'zstd', [`-${args.compression.level ?? 1}`, '-T0', '-c', '-q'], {
      stdin: source,
      env: TOOL_ENV,
      signal,
    });
    source.destroy(); // zstd holds the read end now; should it die, pg_dump gets EPIPE and stops
    source = zstd.child.stdout!;
  }
  // tee hands the stored form on, and a copy through a FIFO to the TOC check for as long as that
  // reads (-p: the closed FIFO then ends that copy only). In C, 0.06 CPU-seconds per 135 MB, where
  // passing the bytes through this process cost ~0.5. A FIFO because Node gives a child's stdio as
  // socket pairs, which tee cannot open as /dev/fd/N.
  const toc = startTocCheck(args.tool('pg_restore'), args.compression.algorithm === 'zstd', fifo, signal);
  const tee = startTool('tee', 'tee', ['-p', fifo], { stdin: source, env: TOOL_ENV, signal });
  source.destroy();
  source = tee.child.stdout!;
  let gpg: GpgEncrypt | undefined;
  if (prepared) {
    gpg = prepared.start({ stdin: source, signal });
    source.destroy();
    source = gpg.tool.child.stdout!;
  }
  const tablesPromise = postgres.listTables(args.client).then((tables) => postgres.countRows(args.client, tables));
  tablesPromise.catch(() => undefined);

  // This process sees only the stored bytes: sha256 and the file. A process that failed is found
  // below, whatever the file received.
  const storing = storeArtifact(source, args.path, {
    signal,
    maxRate: args.maxRate,
    counters: { stored: args.stored },
  });
  const [dumped, compressed, teed, encrypted, stored] = await Promise.allSettled([
    pgDump.exited,
    zstd?.exited,
    tee.exited,
    gpg?.failure.then((err) => {
      if (err) throw err;
    }),
    storing,
  ]);
  const outcome = { tools: [dumped, compressed, teed], gpg: encrypted, stored, path: args.path };
  if (chainFailed(outcome) || stored.status === 'rejected') {
    toc.abort();
    throw failureCause(outcome, (err) => describeToolFailure(err));
  }
  const listing = await toc.listing.catch((err: unknown) => {
    throw nonRetryable(
      ErrorType.SanityCheckFailed,
      `pg_restore --list cannot read the dump: ${(err as Error).message}`,
    );
  });
  // An empty database has no entries, but every readable archive has its header.
  if (!/^; Archive created at /m.test(listing)) {
    throw nonRetryable(ErrorType.SanityCheckFailed, 'pg_restore --list did not read an archive header from the dump');
  }
  const tocEntries = listing.split('\n').filter((l) => l.trim() !== '' && !l.startsWith(';')).length;
  return { artifact: { name: args.name, role: 'dump', ...stored.value }, tocEntries, tables: await tablesPromise };
}

interface TocCheck {
  /** pg_restore --list's output. */
  listing: Promise<string>;
  abort(): void;
}

/** `zstd -d <fifo> | pg_restore --list` (or `cat`, uncompressed): it stops reading after the TOC. */
function startTocCheck(pgRestore: string, compressed: boolean, fifo: string, signal: AbortSignal): TocCheck {
  const controller = new AbortController();
  const both = AbortSignal.any([signal, controller.signal]);
  // Once pg_restore has what it needs, the reader dies of SIGPIPE, which is fine.
  const [, restore] = startChain([
    () =>
      compressed
        ? startTool('zstd -d', 'zstd', ['-d', '-c', '-q', fifo], {
            env: TOOL_ENV,
            signal: both,
            okSignals: ['SIGPIPE'],
            okCodes: [1],
          })
        : startTool('cat', 'cat', [fifo], { env: TOOL_ENV, signal: both, okSignals: ['SIGPIPE'], okCodes: [1] }),
    (stdin) => startTool('pg_restore --list', pgRestore, ['--list'], { stdin, env: TOOL_ENV, signal: both }),
  ]);
  let out = '';
  restore!.child.stdout!.on('data', (d: Buffer) => {
    if (out.length < 64 << 20) out += d.toString();
  });
  const listing = restore!.exited.then(() => out);
  listing.catch(() => undefined); // read only when the dump succeeded; never an unhandled rejection
  return { listing, abort: () => controller.abort() };
}

/** Globals (roles, tablespaces) through the same stages, compressed in this process (they are small). */
export async function dumpGlobals(args: {
  path: string;
  name: string;
  tool: string;
  env: Record<string, string>;
  compression: Compression;
  recipients?: RecipientKeys;
  signal: AbortSignal;
}): Promise<{ artifact: Artifact; rolePasswords: boolean }> {
  const run = async (extra: string[]) => {
    const p = execa(args.tool, ['--globals-only', '--no-password', `--database=${args.env.PGDATABASE}`, ...extra], {
      env: args.env,
      extendEnv: false,
      cancelSignal: args.signal,
      stdin: 'ignore',
      buffer: { stdout: false },
      maxBuffer: { stderr: 1024 * 1024 },
    });
    const options = { compression: args.compression, recipients: args.recipients, signal: args.signal };
    const [result, stored] = await Promise.allSettled([p, storeArtifact(p.stdout, args.path, options)]);
    if (result.status === 'rejected') throw result.reason;
    if (stored.status === 'rejected') throw stored.reason;
    return { name: args.name, role: 'globals' as const, ...stored.value };
  };
  try {
    return { artifact: await run([]), rolePasswords: true };
  } catch (err) {
    // Role passwords live in pg_authid, readable by superusers only; the rest is still worth keeping.
    if (!/permission denied/.test(toolMessage(err))) throw describeToolFailure(err, 'pg_dumpall');
    await rm(args.path + '.partial', { force: true });
    const artifact = await run(['--no-role-passwords']).catch((e: unknown) => {
      throw describeToolFailure(e, 'pg_dumpall');
    });
    return { artifact, rolePasswords: false };
  }
}

function toolMessage(err: unknown): string {
  if (err instanceof ToolError) return err.message;
  const e = err as { stderr?: unknown; shortMessage?: string; message?: string };
  const stderr = typeof e.stderr === 'string' ? e.stderr.trim().split('\n').slice(-5).join(' | ') : '';
  return stderr || e.shortMessage || e.message || String(err);
}

export function describeToolFailure(err: unknown, tool?: string): Error {
  const e = err as { isCanceled?: boolean };
  if (e.isCanceled) return err as Error;
  const message = tool ? `${tool} failed: ${toolMessage(err)}` : toolMessage(err);
  // Permission problems do not go away by retrying; a dropped connection might.
  if (/permission denied|must be (superuser|owner)/i.test(message)) return nonRetryable(ErrorType.DumpFailed, message);
  return retryable(ErrorType.DumpFailed, message);
}

/**
 * Passes every chunk on, and also feeds it to `target` for as long as that reader reads: the
 * table-of-contents check stops after the header. Backpressure from the target is respected, so a
 * slow reader cannot make memory grow.
 */
export class FeedWhileOpen extends Transform {
  private open = true;
  private waiting?: () => void;
  constructor(private readonly target: Writable) {
    super();
    const close = () => {
      this.open = false;
      this.waiting?.();
    };
    target.on('error', close);
    target.on('close', close);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (!this.open || this.target.write(chunk)) return done(null, chunk);
    const resume = () => {
      this.target.off('drain', resume);
      this.waiting = undefined;
      done(null, chunk);
    };
    this.waiting = resume;
    this.target.on('drain', resume);
  }
  override _flush(done: TransformCallback): void {
    if (this.open) this.target.end();
    done();
  }
}

// The dump itself: pg_dump → zstd (a kernel pipe between the two processes) → this process, where
// the compressed bytes pass through encryption and sha256 into the repository and, on the way, into
// `zstd -d | pg_restore --list`, which must read the archive's table of contents (the sanity check).
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import type pg from 'pg';
import { execa } from 'execa';
import { rm } from 'node:fs/promises';
import { ErrorType, nonRetryable, retryable } from '../lib/errors.js';
import type { Artifact, TableCount } from '../lib/manifest.js';
import { storeArtifact, type Compression, type RecipientKeys, type Sha256Stage } from '../stream/pipeline.js';
import * as postgres from './connection.js';
import { startTool, TOOL_ENV, ToolError, type Tool } from '../stream/processes.js';

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
  const toc = startTocCheck(args.tool('pg_restore'), args.compression.algorithm === 'zstd', signal);
  const tablesPromise = postgres.listTables(args.client).then((tables) => postgres.countRows(args.client, tables));
  tablesPromise.catch(() => undefined);

  const storing = storeArtifact(source.pipe(new FeedWhileOpen(toc.input)), args.path, {
    recipients: args.recipients,
    signal,
    maxRate: args.maxRate,
    counters: { stored: args.stored },
  });
  const [dumped, compressed, stored] = await Promise.allSettled([pgDump.exited, zstd?.exited, storing]);
  // pg_dump failing is the root cause whenever it fails: report that, not the broken pipe after it.
  if (dumped.status === 'rejected' || compressed.status === 'rejected' || stored.status === 'rejected') {
    toc.abort();
    if (dumped.status === 'rejected') throw describeToolFailure(dumped.reason);
    if (compressed.status === 'rejected') throw describeToolFailure(compressed.reason);
    throw (stored as PromiseRejectedResult).reason;
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
  /** Where the stored (compressed) bytes are fed. */
  input: Writable;
  /** pg_restore --list's output. */
  listing: Promise<string>;
  abort(): void;
}

function startTocCheck(pgRestore: string, compressed: boolean, signal: AbortSignal): TocCheck {
  const controller = new AbortController();
  const both = AbortSignal.any([signal, controller.signal]);
  let input: Writable;
  let restore: Tool;
  if (compressed) {
    // It stops reading after the table of contents; zstd -d then dies of SIGPIPE, which is fine.
    const unzstd = startTool('zstd -d', 'zstd', ['-d', '-c', '-q'], {
      stdin: 'pipe',
      env: TOOL_ENV,
      signal: both,
      okSignals: ['SIGPIPE'],
      okCodes: [1],
    });
    restore = startTool('pg_restore --list', pgRestore, ['--list'], {
      stdin: unzstd.child.stdout!,
      env: TOOL_ENV,
      signal: both,
    });
    unzstd.child.stdout!.destroy();
    input = unzstd.child.stdin!;
  } else {
    restore = startTool('pg_restore --list', pgRestore, ['--list'], { stdin: 'pipe', env: TOOL_ENV, signal: both });
    input = restore.child.stdin!;
  }
  input.on('error', () => undefined); // EPIPE once the reader has what it needs
  let out = '';
  restore.child.stdout!.on('data', (d: Buffer) => {
    if (out.length < 64 << 20) out += d.toString();
  });
  return { input, listing: restore.exited.then(() => out), abort: () => controller.abort() };
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

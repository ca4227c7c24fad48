// Child processes wired to each other by file descriptor. execa serves every other tool call; the
// dump needs pg_dump's stdout handed to zstd as its stdin, a kernel pipe that no JavaScript copy
// sits in (measured: it saves a core-second per 300 MB), which plain spawn does directly.
import { spawn, type ChildProcess } from 'node:child_process';
import { getPriority, setPriority } from 'node:os';
import type { Readable } from 'node:stream';

/** The environment of tools that need no connection: PATH only, no secret. */
export const TOOL_ENV: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

export class ToolError extends Error {
  override name = 'ToolError';
  constructor(
    readonly tool: string,
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly stderr: string,
  ) {
    super(
      `${tool} failed (${exitCode !== null ? `exit code ${exitCode}` : `signal ${signal}`})${stderr ? `: ${stderr}` : ''}`,
    );
  }
}

export interface Tool {
  child: ChildProcess;
  /** Resolves when the process exits 0; rejects with a ToolError carrying the end of its stderr. */
  exited: Promise<void>;
}

export interface ToolOptions {
  env?: Record<string, string>;
  /** 'ignore', 'pipe', or another process's stdout to read from directly. */
  stdin?: 'ignore' | 'pipe' | Readable;
  /** 'pipe' (default) or 'ignore'. */
  stdout?: 'pipe' | 'ignore';
  /** Aborting terminates the process (SIGTERM, then SIGKILL after 5 s). */
  signal?: AbortSignal;
  /** Exit codes that count as success besides 0. */
  okCodes?: number[];
  /** Death by these signals counts as success (e.g. SIGPIPE for a reader that stopped early). */
  okSignals?: NodeJS.Signals[];
  /** Written to the process's file descriptor 3, then closed: a secret kept out of argv and env. */
  secretFd3?: string;
  /** The process runs in this group, at its nice value (best effort). */
  priority?: PriorityGroup;
}

/**
 * Processes started at a nice value that can be raised back to the worker's own while they run:
 * work that may wait yields the cores to what may not, until it is what is waited for.
 * Best effort: a worker without the right to lower a nice value (not root) leaves it as it was.
 */
export class PriorityGroup {
  private readonly running = new Set<number>();
  constructor(private niceness: number) {}
  /** From now on, the running processes and those started later at the worker's own priority. */
  raise(): void {
    if (this.niceness === 0) return;
    this.niceness = 0;
    for (const pid of this.running) renice(pid, getPriority());
  }
  /** @internal startTool's */
  add(child: ChildProcess): void {
    if (child.pid === undefined) return;
    const pid = child.pid;
    if (this.niceness) renice(pid, getPriority() + this.niceness);
    this.running.add(pid);
    child.once('exit', () => this.running.delete(pid));
  }
}

function renice(pid: number, niceness: number): void {
  try {
    setPriority(pid, Math.min(niceness, 19));
  } catch {
    // Gone already, or not allowed: it keeps the priority it has.
  }
}

export function startTool(name: string, file: string, args: string[], options: ToolOptions = {}): Tool {
  const child = spawn(file, args, {
    env: options.env ?? TOOL_ENV,
    stdio: [
      options.stdin ?? 'ignore',
      options.stdout ?? 'pipe',
      'pipe',
      ...(options.secretFd3 !== undefined ? ['pipe' as const] : []),
    ],
  });
  options.priority?.add(child);
  if (options.secretFd3 !== undefined) {
    const fd3 = child.stdio[3] as NodeJS.WritableStream & { on(e: 'error', f: () => void): void };
    fd3.on('error', () => undefined); // a process that exits without reading it fails on its own
    fd3.end(options.secretFd3);
  }
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8192);
  });
  const kill = () => {
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  };
  options.signal?.addEventListener('abort', kill, { once: true });
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (err) => reject(new ToolError(name, null, null, err.message)));
    child.on('close', (code, signal) => {
      options.signal?.removeEventListener('abort', kill);
      const ok =
        code === 0 ||
        (code !== null && options.okCodes?.includes(code)) ||
        (signal !== null && options.okSignals?.includes(signal));
      if (ok) resolve();
      else reject(new ToolError(name, code, signal, stderr.trim().split('\n').slice(-5).join(' | ')));
    });
  });
  exited.catch(() => undefined); // callers await it; never an unhandled rejection meanwhile
  return { child, exited };
}

/**
 * Processes joined stdout → stdin by kernel pipes: each `start` receives the previous process's
 * stdout ('pipe' for the first, whose stdin the caller writes). The parent lets go of each pipe
 * once the next process holds it, so a dying reader stops its writer with EPIPE.
 */
export function startChain(starts: ((stdin: 'pipe' | Readable) => Tool)[]): Tool[] {
  const tools: Tool[] = [];
  for (const start of starts) {
    const previous = tools.at(-1);
    tools.push(start(previous ? previous.child.stdout! : 'pipe'));
    previous?.child.stdout!.destroy();
  }
  return tools;
}

// How the rsync driver (rsync.ts) reaches its repository: a directory on another host, through the system's ssh
// and rsync, run with only PATH (and the ssh agent) in their environment and cancelled with the activity. Every
// failure of ssh or rsync is mapped here, from ssh's messages and the exit codes, to pgwarden's error types.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { execa } from 'execa';
import type { RsyncRepositoryConfig } from '../config/repositories.js';
import { ErrorType, nonRetryable, retryable } from '../lib/errors.js';
import { TOOL_ENV } from '../stream/processes.js';
import type { TransferProgress } from './storage.js';

/** Options of one ssh or rsync run: its stdin, the exit codes that are not failures, rsync's progress. */
export interface RunOptions {
  input?: string;
  okCodes?: number[];
  progress?: TransferProgress;
}

/** What a run answers: ssh's stdout (rsync's is progress only) and the exit code. */
export interface RunResult {
  stdout: string;
  exitCode: number;
}

/** The remote directory of an rsync repository, from its `destination`, and the tools that reach it. */
export interface RsyncRemote {
  host: string;
  root: string;
  /** The repository as messages name it. */
  label: string;
  /** ssh with its options, as rsync's -e command. */
  rsyncShell: string;
  /** `user@host:<root>/<key>`, as rsync names a remote file. */
  remote(key: string): string;
  run(tool: 'ssh' | 'rsync', args: string[], what: string, options?: RunOptions): Promise<RunResult>;
  /** Runs `script` with sh on the remote host (whatever the login shell), `input` on its stdin. */
  ssh(script: string, what: string, options?: Omit<RunOptions, 'progress'>): Promise<RunResult>;
}

export function connectRsync(name: string, config: RsyncRepositoryConfig): RsyncRemote {
  // `user@host:/path`, host possibly a bracketed IPv6 address: the path starts at the first ':/'.
  const at = config.destination.indexOf('@');
  const colon = config.destination.indexOf(':/', at);
  const user = config.destination.slice(0, at);
  const host = config.destination.slice(at + 1, colon).replace(/^\[(.*)\]$/, '$1');
  const root = config.destination.slice(colon + 1).replace(/(.)\/+$/, '$1');
  const label = `offsite repository "${name}" (${config.destination})`;
  if (host.startsWith('-')) throw nonRetryable(ErrorType.OffsiteMisconfigured, `${label}: bad host name "${host}"`);

  const sshOptions = [
    '-p',
    String(config.port),
    ...(config.identityFile ? ['-i', config.identityFile, '-o', 'IdentitiesOnly=yes'] : []),
    '-o',
    'BatchMode=yes', // never wait for a password or passphrase prompt
    '-o',
    'StrictHostKeyChecking=yes', // an unknown or changed host key is refused, never learned
    ...(config.knownHostsFile ? ['-o', `UserKnownHostsFile=${config.knownHostsFile}`] : []),
    '-o',
    'ConnectTimeout=10',
    // A silent peer fails the transfer within a minute instead of hanging until the heartbeat timeout.
    '-o',
    'ServerAliveInterval=15',
    '-o',
    'ServerAliveCountMax=4',
  ];
  const rsyncShell = ['ssh', ...sshOptions].map(rsyncQuote).join(' ');
  const remote = (key: string) => `${user}@${host.includes(':') ? `[${host}]` : host}:${root}/${key}`;
  // PATH only, as for every tool (no secret of the worker's environment reaches ssh), plus the
  // agent socket for keys held by an ssh-agent when no identityFile is configured.
  const env = { ...TOOL_ENV, ...(process.env.SSH_AUTH_SOCK ? { SSH_AUTH_SOCK: process.env.SSH_AUTH_SOCK } : {}) };

  /** One mapping for every call: ssh's own failures (exit 255) are classified from its stderr. */
  function failure(what: string, exitCode: number | undefined, stderr: string, detail?: string): ApplicationFailure {
    const last = stderr.trim().split('\n').slice(-3).join(' | ');
    // ssh's own refusals, whatever the exit code: rsync reports a dead ssh as 255 or, depending on
    // timing, as a protocol error (12). These messages come from ssh only.
    if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \S+ host key is known/.test(stderr)) {
      return nonRetryable(
        ErrorType.OffsiteMisconfigured,
        `${label}: host key of ${host} does not match ${config.knownHostsFile ?? 'the known_hosts of the worker user'}`,
      );
    }
    if (/Permission denied \((publickey|password|keyboard-interactive|hostbased|gssapi)/.test(stderr)) {
      return nonRetryable(
        ErrorType.OffsiteMisconfigured,
        `${label}: ssh refused the key${config.identityFile ? ` ${config.identityFile}` : ''} for ${user}@${host} (${last})`,
      );
    }
    // 255 is ssh's own failure (rsync passes it on); any other code is the remote command's.
    if (exitCode !== 255)
      return retryable(
        ErrorType.OffsiteUnavailable,
        `${label}: ${what} failed (${detail ?? `exit code ${exitCode}`})${last ? `: ${last}` : ''}`,
      );
    if (
      /Connection refused|Connection timed out|timed out during banner|No route to host|Network is unreachable|Could not resolve hostname|Connection reset|Connection closed by/.test(
        stderr,
      )
    ) {
      return retryable(ErrorType.OffsiteUnavailable, `${label}: cannot reach ${host}:${config.port} (${last})`);
    }
    // Anything else (the connection dropped mid-transfer): worth another attempt.
    return retryable(ErrorType.OffsiteUnavailable, `${label}: ${what} failed (ssh: ${last})`);
  }

  async function run(
    tool: 'ssh' | 'rsync',
    args: string[],
    what: string,
    options: { input?: string; okCodes?: number[]; progress?: TransferProgress } = {},
  ) {
    const child = execa(tool, args, {
      env,
      extendEnv: false,
      input: options.input,
      reject: false,
      stripFinalNewline: false,
      cancelSignal: activitySignal(),
      buffer: { stdout: tool === 'ssh', stderr: true }, // rsync's stdout is progress only
    });
    if (options.progress) child.stdout?.on('data', (d: Buffer) => reportProgress(d.toString(), options.progress!));
    const r = await child;
    if (r.isCanceled) throw new Error(`${label}: ${what} cancelled`);
    if (r.exitCode === undefined) throw failure(what, undefined, r.stderr ?? '', r.shortMessage);
    if (r.exitCode !== 0 && !options.okCodes?.includes(r.exitCode)) throw failure(what, r.exitCode, r.stderr ?? '');
    return { stdout: typeof r.stdout === 'string' ? r.stdout : '', exitCode: r.exitCode };
  }

  /** Runs `script` with sh on the remote host (whatever the login shell), `input` on its stdin. */
  const ssh = (script: string, what: string, options: { input?: string; okCodes?: number[] } = {}) =>
    run('ssh', [...sshOptions, '-l', user, '--', host, `sh -c ${shQuote(script)}`], what, options);

  return { host, root, label, rsyncShell, remote, run, ssh };
}

/** A single-quoted word for a POSIX shell. */
export function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** A word of rsync's -e command, which rsync splits itself: quotes group, a doubled quote is literal. */
function rsyncQuote(s: string): string {
  return /^[A-Za-z0-9_.,:=/@+-]+$/.test(s) ? s : `'${s.replaceAll("'", "''")}'`;
}

/** rsync --info=progress2 prints `\r   1,234,567  12%  ...`: the bytes so far. */
function reportProgress(chunk: string, progress: TransferProgress): void {
  const matches = [...chunk.matchAll(/([\d,]+)\s+\d+%/g)];
  const last = matches.at(-1);
  if (last) progress(Number(last[1]!.replaceAll(',', '')));
}

/** The activity's cancellation, so a cancelled sync stops its transfer (none outside an activity). */
function activitySignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

// OpenPGP encryption by stock GnuPG as a stream stage: `gpg --encrypt --recipient-file <key>...` in
// a child process, as wal-push does (src/archive/push.ts). It writes what the openpgp library wrote
// before in this process — PKESK packets and SEIPD v1 with MDC, no OpenPGP-level compression (the
// data is compressed already) — so backups of either kind decrypt alike, with gpg or openpgp. The
// cipher runs in C on another core instead of on the worker's JavaScript thread, and no web-stream
// buffers pile up in the worker (measured in docs/benchmarks.md, fullBackup).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duplex, PassThrough, Writable, type Readable } from 'node:stream';
import { ErrorType, nonRetryable } from '../lib/errors.js';
import { startTool, TOOL_ENV, type Tool, type ToolError } from './processes.js';

/**
 * Where the throwaway homes go: `<prefix><pid>-XXXXXX`, the form of gpg.ts's keyrings, so that its
 * cleanup of a dead worker's keyrings (at every keyring it opens) removes a dead worker's homes too.
 */
const HOME_PREFIX = '/tmp/pgwarden-gpg-';

export interface GpgEncrypt {
  /** gpg reading the plain bytes on its stdin and writing the OpenPGP message on its stdout. */
  tool: Tool;
  /** Resolves when gpg has exited: undefined when it succeeded, else why it failed. */
  failure: Promise<Error | undefined>;
}

/**
 * gpg's stderr says it could not use a recipient's key (unusable, expired, revoked, unreadable):
 * the same on a retry. Anything else (a write error on its output, a crash) is not about the keys.
 */
export function gpgKeyProblem(stderr: string): boolean {
  return /skipped: |unusable public key|no public key|no valid openpgp data|invalid recipient|no valid addressees|wrong key usage|key (has )?(expired|revoked)/i.test(
    stderr,
  );
}

/** gpg, or a tool beside it, failed because the reader of its output went away: a consequence, not a cause. */
export function brokenPipe(err: unknown): boolean {
  const e = err as Partial<ToolError>;
  return e.signal === 'SIGPIPE' || /broken pipe|EPIPE|ECONNRESET|connection reset/i.test(e.stderr ?? '');
}

export interface PreparedGpgEncrypt {
  /** Starts gpg; the home is removed once it exits. */
  start(options: { stdin: 'pipe' | Readable; signal?: AbortSignal }): GpgEncrypt;
  /** Removes the home when gpg was never started. */
  discard(): void;
}

/**
 * Writes the keys in `armoredKeys` (public keys, armored) to a throwaway gpg home (mode 0700, removed
 * when gpg exits; a dead worker's is removed by the next keyring's cleanup, see HOME_PREFIX), so
 * nobody's own GnuPG state is read or changed. Everything that can throw happens here, before any
 * process is started: a caller prepares before it starts the processes that feed gpg.
 */
export function prepareGpgEncrypt(armoredKeys: readonly string[]): PreparedGpgEncrypt {
  const home = mkdtempSync(`${HOME_PREFIX}${process.pid}-`);
  const remove = () => rmSync(home, { recursive: true, force: true });
  const args = ['--homedir', home, '--batch', '--no-tty', '--quiet', '--no-autostart'];
  args.push('--trust-model', 'always', '--compress-algo', 'none');
  try {
    armoredKeys.forEach((key, i) => {
      const file = join(home, `recipient-${i}.asc`);
      writeFileSync(file, key, { mode: 0o600 });
      args.push('--recipient-file', file);
    });
  } catch (err) {
    remove();
    throw err;
  }
  let started = false;
  return {
    start(options) {
      const tool = startTool('gpg --encrypt', 'gpg', [...args, '--output', '-', '--encrypt'], {
        stdin: options.stdin,
        env: { ...TOOL_ENV, GNUPGHOME: home },
        signal: options.signal,
      });
      started = true;
      // A key gpg cannot use stays so on a retry; killed, or a write error, it may not be.
      const failure = tool.exited.then(
        () => undefined,
        (err: ToolError) =>
          err.exitCode !== null && gpgKeyProblem(err.stderr) ? nonRetryable(ErrorType.KeyUnreadable, err.message) : err,
      );
      void failure.finally(remove);
      return { tool, failure };
    },
    discard() {
      if (!started) remove();
    },
  };
}

/**
 * Starts `gpg --encrypt` to every key in `armoredKeys` (prepareGpgEncrypt), reading `stdin` (a pipe
 * this process writes, or another process's stdout). Aborting `signal` stops gpg.
 */
export function startGpgEncrypt(
  armoredKeys: readonly string[],
  options: { stdin: 'pipe' | Readable; signal?: AbortSignal },
): GpgEncrypt {
  return prepareGpgEncrypt(armoredKeys).start(options);
}

/**
 * A stage that encrypts what is written to it (startGpgEncrypt). A failing gpg fails the stage with
 * gpg's own message; aborting `signal` stops gpg.
 */
export function gpgEncryptStage(armoredKeys: readonly string[], signal?: AbortSignal): Duplex {
  const { tool: gpg, failure: failed } = startGpgEncrypt(armoredKeys, { stdin: 'pipe', signal });
  // The readable side ends only once gpg has exited 0: a gpg that dies early must not look like a
  // short, complete message.
  const output = new PassThrough();
  gpg.child.stdout!.pipe(output, { end: false });
  gpg.child.stdout!.on('end', () => void failed.then((err) => (err ? output.destroy(err) : output.end())));
  // Writing into a gpg that died (EPIPE) reports why it died instead.
  const stdin = gpg.child.stdin!;
  stdin.on('error', () => undefined);
  const input = new Writable({
    write(chunk: Buffer, _enc, done) {
      stdin.write(chunk, (err) => (err ? void failed.then((why) => done(why ?? err)) : done()));
    },
    final(done) {
      stdin.end(done);
    },
  });
  const stage = Duplex.from({ writable: input, readable: output });
  stage.on('close', () => {
    if (gpg.child.exitCode === null && gpg.child.signalCode === null) gpg.child.kill();
  });
  return stage;
}

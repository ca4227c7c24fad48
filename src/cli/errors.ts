// How `pgwarden` fails: one line on stderr starting `pgwarden: `, a non-zero exit, never a stack
// trace, never the whole help text. Usage mistakes (unknown option or command, missing argument,
// bad value) name the help to read on the same line: `(see: pgwarden backup --help)`.
import { CommanderError, type Command } from 'commander';
import type { Config } from '../config/index.js';
import { backupIdProblem } from '../lib/ids.js';

/** A mistake of the user's (bad input, unknown cluster or workflow): printed as one line. */
export class UserError extends Error {
  override name = 'UserError';
  /** The command whose help explains the mistake (`pgwarden pitr`), for a usage mistake. */
  constructor(
    message: string,
    readonly helpOf?: string,
  ) {
    super(message);
  }
}

/** `--cluster` names a configured cluster, or the command stops with the ones there are. */
export function requireCluster(cfg: Config, name: string): void {
  if (!(name in cfg.clusters))
    throw new UserError(`unknown cluster "${name}" (configured: ${Object.keys(cfg.clusters).join(', ')})`);
}

/** `--backup-id`, when given, is a backup id, or the command stops saying what one looks like. */
export function requireBackupIdOption(value: string | undefined): void {
  const problem = value ? backupIdProblem(value, '--backup-id') : undefined;
  if (problem) throw new UserError(problem);
}

/** A mistake in how a command was called, from commander, with the command it happened in. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(
    message: string,
    readonly helpOf: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

// The command whose action runs, for the help a usage mistake points to.
let running: Command | undefined;

/** Keeps track of the command whose action runs (call once, on the program), for `usage`. */
export function trackRunningCommand(program: Command): void {
  program.hook('preAction', (_program, action) => {
    running = action;
  });
}

/** A mistake in how the running command was called: one line, with its help to read. */
export function usage(message: string): UserError {
  return new UserError(message, running ? commandPath(running) : 'pgwarden');
}

/** `pgwarden offsite sync` for the `sync` command under `offsite`. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** commander's message as our one line: no `error: ` prefix, the suggestion on the same line. */
export function usageMessage(message: string): string {
  return message
    .replace(/^error: /, '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => l.replace(/^\(Did you mean/, '(did you mean'))
    .join(' ');
}

/**
 * Makes every command of the tree (call it once all commands are registered) throw its usage
 * mistakes as UsageError instead of printing them and exiting; `--help` still prints to stdout.
 */
export function oneLineErrors(root: Command): void {
  const visit = (cmd: Command) => {
    cmd.showHelpAfterError(false);
    cmd.configureOutput({
      // Usage mistakes are reported by the caller in one line; commander would print the
      // message, and the whole help for a command given without its subcommand.
      outputError: () => undefined,
      writeErr: () => true,
    });
    cmd.exitOverride((err: CommanderError) => {
      if (err.exitCode === 0) throw err; // --help, `pgwarden help`: printed, a success
      const path = commandPath(cmd);
      if (err.code === 'commander.help') {
        // A command that only groups others, called without one (`pgwarden offsite`).
        const sub = cmd.commands.map((c) => c.name()).filter((n) => n !== 'help');
        const message = cmd.parent
          ? `${path.replace(/^pgwarden /, '')} needs a command: ${sub.join(', ')}`
          : 'missing command';
        throw new UsageError(message, path, err.exitCode || 1);
      }
      // commander checks required options before unknown ones: `--databse app` would read
      // "required option '--database' not specified"; name the typo (and its suggestion) instead.
      const typo = err.code === 'commander.missingMandatoryOptionValue' ? unknownFlag(cmd) : undefined;
      if (typo) (cmd as unknown as { unknownOption(flag: string): never }).unknownOption(typo);
      throw new UsageError(usageMessage(err.message), path, err.exitCode || 1);
    });
    for (const sub of cmd.commands) visit(sub);
  };
  visit(root);
}

/** The first argument of `cmd` that looks like an option neither it nor its parents know. */
function unknownFlag(cmd: Command): string | undefined {
  const known = new Set(['-h', '--help']);
  for (let c: Command | null = cmd; c; c = c.parent)
    for (const o of c.options) for (const f of [o.long, o.short]) if (f) known.add(f);
  return cmd.args.find((a) => a.startsWith('-') && a !== '-' && a !== '--' && !known.has(a.split('=')[0]!));
}

const isWorkflowFailure = (err: unknown): err is Error & { cause?: Error } =>
  err instanceof Error && err.name === 'WorkflowFailedError';

/** The one line for any error (without the `pgwarden: ` prefix). */
export function oneLine(err: unknown): string {
  let message: string;
  if (err instanceof UserError || err instanceof UsageError) {
    message = err.helpOf ? `${err.message} (see: ${err.helpOf} --help)` : err.message;
  } else if (err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError' && 'workflowId' in err) {
    const id = String(err.workflowId);
    message = `${id} was started already (see: pgwarden status ${id})`;
  } else if (isWorkflowFailure(err)) {
    let cause: Error | undefined = err.cause;
    while (cause && (cause as { cause?: Error }).cause) cause = (cause as { cause?: Error }).cause;
    message = `workflow failed: ${cause?.message ?? err.message}`;
  } else {
    message = err instanceof Error ? err.message : String(err);
  }
  return message.replace(/\s*\n\s*/g, ' ').trim();
}

/** Errors the user can act on from the line alone; anything else also shows its stack with PGWARDEN_DEBUG. */
export function isExpected(err: unknown): boolean {
  return (
    err instanceof UserError ||
    err instanceof UsageError ||
    isWorkflowFailure(err) ||
    (err instanceof Error &&
      ['ConfigError', 'DevPortError', 'WorkflowNotFoundError', 'WorkflowExecutionAlreadyStartedError'].includes(
        err.name,
      )) ||
    (err instanceof Error && err.message.startsWith('cannot reach Temporal'))
  );
}

/** Prints `err` as one line on stderr and sets the exit code; --help and friends exit 0 silently. */
export function reportError(err: unknown): void {
  if (err instanceof CommanderError && err.exitCode === 0) {
    process.exitCode = 0;
    return;
  }
  process.stderr.write(`pgwarden: ${oneLine(err)}\n`);
  if (!isExpected(err) && process.env.PGWARDEN_DEBUG) console.error(err);
  process.exitCode = err instanceof UsageError ? usageExitCode(err) : 1;
}

/**
 * PostgreSQL's own commands: a usage mistake in wal-get (restore_command) exits 126, which stops
 * recovery, never 1, which it reads as "not in the archive" and ends recovery early; wal-push
 * (archive_command, retried on any nonzero exit) the same, so a mistake is never a success.
 */
const WAL_COMMANDS = new Set(['pgwarden wal-get', 'pgwarden wal-push']);
export const EXIT_USAGE_WAL = 126;

function usageExitCode(err: UsageError, argv = process.argv.slice(2)): number {
  // A mistake before the command's name (`pgwarden --bogus wal-get ...`) is the program's.
  const wal =
    WAL_COMMANDS.has(err.helpOf) || (err.helpOf === 'pgwarden' && argv.some((a) => WAL_COMMANDS.has(`pgwarden ${a}`)));
  return wal ? EXIT_USAGE_WAL : err.exitCode;
}

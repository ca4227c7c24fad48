// What stops the demo early: Ctrl-C or SIGTERM, or an uncaught exception. Either one rejects
// `aborted`, so the demo goes straight to its clean-up; from then on (and once clean-up has begun
// for any reason) stray errors are ignored so the clean-up runs to its end. One Ctrl-C arrives
// several times (the terminal, npm and tsx each pass it on); a second one a moment later exits at
// once, without cleaning up.
export class Interrupted extends Error {}

export interface AbortWatch {
  aborted: Promise<never>;
  /** Clean-up begins: from now on stray errors are ignored. */
  cleaningUp(): void;
}

export function watchForAbort(explain: (err: unknown) => string): AbortWatch {
  let since = 0;
  let firstSignal = 0;
  let abort: (err: unknown) => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => (abort = reject));
  aborted.catch(() => undefined);

  const onSignal = (signal: NodeJS.Signals) => {
    const now = Date.now();
    if (!firstSignal) firstSignal = now;
    else if (now - firstSignal > 1000) {
      console.error('demo: stopped without cleaning up; look for /tmp/pgwarden-* directories and a leftover postgres');
      process.exit(130);
    }
    if (!since) {
      since = now;
      abort(new Interrupted(`interrupted (${signal})`));
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('uncaughtException', (err) => {
    if (since) return; // e.g. a client call retrying on a connection the clean-up closed
    since = Date.now();
    abort(err);
  });
  // A stray rejection (e.g. a tool the same Ctrl-C killed) is worth a line, not a crash.
  process.on('unhandledRejection', (err) => {
    if (!since) console.error(`demo: warning: unhandled rejection: ${explain(err)}`);
  });
  return { aborted, cleaningUp: () => void (since ||= Date.now()) };
}

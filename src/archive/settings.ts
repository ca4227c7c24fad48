// What wal-push and its asynchronous pusher are configured with: plain data taken from the config
// (by zod in a worker, by the fast path's plain reading in archive_command), shared by push.ts and
// pushAsync.ts without either loading the other for it.
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What wal-push needs from the config, nothing more. */
export interface WalPushSettings {
  /** The cluster's WAL archive directory. */
  archiveDir: string;
  compression: { algorithm: 'zstd' | 'none'; level: number };
  /** Public key files; encrypted to all of them when set. */
  recipients?: string[];
  /** Push ahead of PostgreSQL's archiver (pushAsync.ts); unset: each call pushes its own file. */
  async?: AsyncPushSettings;
}

export interface AsyncPushSettings {
  /** Where the pusher keeps its lock, log and the failures it has to report. */
  spoolDirectory: string;
  /** Files pushed at a time. */
  processes: number;
  /** How long an archive_command waits for its file before it fails (PostgreSQL then retries). */
  waitSeconds: number;
}

/** What the pusher is started with (argv of `pgwarden wal-push-daemon`: paths, no secrets). */
export interface PusherJob {
  settings: WalPushSettings & { async: AsyncPushSettings };
  /** The cluster's pg_wal directory. */
  pgWal: string;
}

/** From the config's `walPush` section (validated by zod, or plainly by the fast path); undefined when off. */
export function asyncPushSettings(
  walPush: { async?: boolean; spoolDirectory?: string; processes?: number; waitSeconds?: number } | undefined,
  cluster: string,
): AsyncPushSettings | undefined {
  if (!walPush?.async) return undefined;
  // One spool per cluster: a pusher serves the one pg_wal it was started for.
  const base = walPush.spoolDirectory ?? join(tmpdir(), `pgwarden-spool-${process.getuid?.() ?? 'user'}`);
  return {
    spoolDirectory: join(base, cluster),
    processes: walPush.processes ?? 2,
    waitSeconds: walPush.waitSeconds ?? 60,
  };
}

/** wal-get's prefetching (walGet.async): where its spool is and how far ahead the fetcher decodes. */
export interface AsyncGetSettings {
  /** Holds the segments decoded ahead, their sidecars, the fetcher's lock and log. */
  spoolDirectory: string;
  /** Segments decoded ahead of the one recovery asked for. */
  prefetch: number;
}

/** From the config's `walGet` section; undefined when off (each wal-get decodes its own file). */
export function asyncGetSettings(
  walGet: { async?: boolean; spoolDirectory?: string; prefetch?: number } | undefined,
  cluster: string,
  /** Whose default spool (the user restore_command runs as); this process's by default. */
  uid: number | undefined = process.getuid?.(),
): AsyncGetSettings | undefined {
  if (!walGet?.async) return undefined;
  // Not wal-push's spool: a host may archive one cluster and restore another under the same name.
  const base = walGet.spoolDirectory ?? join(tmpdir(), `pgwarden-get-spool-${uid ?? 'user'}`);
  return { spoolDirectory: join(base, cluster), prefetch: walGet.prefetch ?? 8 };
}

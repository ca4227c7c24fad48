// What point-in-time recovery does to a cluster's data directory: stage a base backup and its WAL
// beside it, stop the server, move the live directory aside (never delete it), recover, verify,
// and roll back to the moved-aside directory if anything after the swap fails. These activities
// run on the database host's own queue. Every one is safe to repeat: each checks what is done.
import { existsSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { execa } from 'execa';
import type { Readable } from 'node:stream';
import type { ClusterConfig, Config } from '../config/index.js';
import { ErrorType, nonRetryable, retryable } from '../lib/errors.js';
import { describeTarget, parseWaldump, planRecoveryPath, reachesTarget, type RecoveryTarget } from '../lib/recovery.js';
import { formatLsn, headerMatchesSegment, HISTORY_NAME, parseLsn, parseSegmentName, segmentName, segmentOf } from '../lib/wal.js';
import { openKeyring } from '../stream/gpg.js';
import { feedFile, hashFile, writeFileAtomic } from '../stream/pipeline.js';
import * as postgres from '../postgres/connection.js';
import { startChain, startTool, TOOL_ENV } from '../stream/processes.js';
import { LocalRepository } from '../storage/repository.js';
import { markInUse } from './retention.js';
import { walRecordName } from '../lib/layout.js';
import { pushWalFile } from '../archive/push.js';
import { decodeWal, decodeWalBatch, openWalDecryption, readHistories, walPushSettingsFor, WalArchive } from '../storage/walArchive.js';
import { hostname, tmpdir } from 'node:os';
import { freePortOnLoopback } from '../host/ports.js';
import { runHook } from './hooks.js';

export type RecoveryMode = 'in-place' | 'rehearsal';

const RECOVERY_BLOCK_HEADER = '\n# pgwarden point-in-time recovery\n';
/** Written in the work directory by a swap that found no data directory (a rebuilt host): a rollback leaves it missing again. */
const NO_ORIGINAL = 'NO-ORIGINAL';
/** How much of one log file an error or the kept recovery log carries (its end). */
const LOG_READ_BYTES = 8 * 1024 * 1024;
/** WAL segments decoded by one gpg and one zstd process while staging (two batches at a time). */
const WAL_BATCH = 8;

export interface RecoveryPlan {
  cluster: string;
  mode: RecoveryMode;
  target: RecoveryTarget;
  targetDescription: string;
  backupId: string;
  backupStopLsn: string;
  targetTimeline: number;
  walFiles: string[];
  /** The live data directory. */
  dataDirectory: string;
  /** Working directory beside it: `data/` (the new data directory), `wal/`, recovery.log. */
  workDirectory: string;
  /** Where the live data directory is moved to (in-place) and kept. */
  asideDirectory: string;
  /** The task queue of the worker on the database host. */
  hostQueue: string;
  /** Set while plan waits for the archive to reach the target (the workflow asks again). */
  pending?: ArchiveWait;
}

/** A wait for archiving: since when, for which segment (the one pgwarden's WAL switch finished), and why. */
export interface ArchiveWait {
  since: string;
  segment?: string;
  detail: string;
}

export interface RecoveryOutcome {
  /** Timeline the server runs on after promotion. */
  timeline: number;
  /** WAL position where replay ended. */
  reachedLsn: string;
  /** What PostgreSQL logged about where it stopped (e.g. "recovery stopping before commit of transaction 812, time ..."). */
  stoppedAt?: string;
  port: number;
  recoverSeconds: number;
}

export function createClusterActivities({ config, env }: { config: Config; env: NodeJS.ProcessEnv }) {
  const clusterRef = (name: string) => postgres.clusterRef(config, name);
  const cc = (plan: { cluster: string }) => clusterRef(plan.cluster).config;
  /** The cluster as configured, but at another address (a rehearsal's scratch server). */
  const at = (cluster: postgres.ClusterRef, host: string, port: number): postgres.ClusterRef => ({ name: cluster.name, config: { ...cluster.config, host, port } });

  function dataDirectoryOf(cluster: string): string {
    const dir = clusterRef(cluster).config.dataDirectory;
    if (!dir) throw nonRetryable(ErrorType.InvalidInput, `cluster "${cluster}" has no dataDirectory in the config; point-in-time recovery needs it`);
    return dir.replace(/\/+$/, '');
  }

  /** The plan step: target resolved, base backup chosen, every WAL file to the target proven present. */
  async function planRecovery(input: {
    cluster: string;
    target: RecoveryTarget;
    mode: RecoveryMode;
    runId: string;
    now?: string;
    /** Prove from the WAL's content that replay reaches the target (workflows from before this option do not ask). */
    prove?: boolean;
    /** The wait a previous call started (its result's `pending`). */
    waiting?: ArchiveWait;
  }): Promise<RecoveryPlan> {
    if (input.mode !== 'in-place' && input.mode !== 'rehearsal') throw nonRetryable(ErrorType.InvalidInput, `mode must be "in-place" or "rehearsal", not "${String(input.mode)}"`);
    const cluster = clusterRef(input.cluster);
    const dataDirectory = dataDirectoryOf(input.cluster);
    const repo = LocalRepository.forCluster(config, input.cluster);
    const archive = WalArchive.forCluster(config, input.cluster);
    const backups = await repo.listBaseBackups(input.cluster);
    const records = await archive.list();
    const histories = await readHistories(config, env, archive, records.keys());
    const path = planRecoveryPath({
      target: input.target,
      backups,
      wal: [...records.values()].map((r) => ({ name: r.name, archivedAt: r.archivedAt })),
      histories,
      now: input.now ? new Date(input.now) : new Date(),
      openEnded: input.prove,
      liveTimeline: await liveTimeline(input.cluster),
    });
    // Every history file the archive holds is staged, not only those on the path: at promotion the
    // server takes the first timeline id no history file names, and one the archive already has
    // (an abandoned branch) would collide with it there, and stop archiving.
    const otherHistories = [...records.keys()].filter((n) => HISTORY_NAME.test(n) && !path.walFiles.includes(n)).sort();
    let pending: ArchiveWait | undefined;
    if (input.prove) {
      pending = await proveReach(input, path, records);
    } else if ('name' in input.target && !(await findRestorePoint(input.cluster, input.target.name, path.walFiles))) {
      throw nonRetryable(ErrorType.BadTarget, `restore point "${input.target.name}" is not in the archived WAL after base backup ${path.backup.backupId}`);
    }
    const id = input.runId.replace(/-/g, '').slice(-12); // the random end (run ids may start with a timestamp)
    const workDirectory = input.mode === 'in-place' ? `${dataDirectory}.pgwarden-pitr-${id}` : `${dirname(dataDirectory)}/pgwarden-rehearsal-${id}`;
    const loopback = ['127.0.0.1', 'localhost', '::1'].includes(cluster.config.host);
    return {
      cluster: input.cluster,
      mode: input.mode,
      target: input.target,
      targetDescription: describeTarget(input.target),
      backupId: path.backup.backupId,
      backupStopLsn: path.backup.stopLsn,
      targetTimeline: path.targetTimeline,
      walFiles: [...otherHistories, ...path.walFiles, ...path.followingWalFiles],
      dataDirectory,
      workDirectory,
      asideDirectory: `${dataDirectory}.pre-pitr-${id}`,
      hostQueue: cluster.config.hostQueue ?? `pgwarden@${loopback ? (config.worker.host ?? hostname()) : cluster.config.host}`,
      ...(pending ? { pending } : {}),
    };
  }

  /**
   * Whether replay reaches the target, from the WAL's content: for a time, a commit or abort after
   * it; for an LSN, a record at or past it; for a restore point, its record. When the archive does
   * not reach it yet, the first call makes the live server finish its current segment (a tiny
   * transaction first for a time target, so that a commit after the target exists even on an idle
   * cluster) and returns a wait; later calls wait for that segment to be archived, bounded by
   * `archiveWaitSeconds`, then refuse the target with how far the archive reaches.
   */
  async function proveReach(
    input: { cluster: string; target: RecoveryTarget; waiting?: ArchiveWait },
    path: ReturnType<typeof planRecoveryPath>,
    records: Map<string, { name: string }>,
  ): Promise<ArchiveWait | undefined> {
    const { target } = input;
    if ('latest' in target) return undefined;
    let reach: string;
    if ('name' in target) {
      if (await findRestorePoint(input.cluster, target.name, path.walFiles)) return undefined;
      reach = `the archived WAL after base backup ${path.backup.backupId} (to ${path.lastSegment}) holds no restore point "${target.name}"`;
    } else {
      const found = await scanWal(input.cluster, target, [path.lastSegment, ...path.followingWalFiles]);
      if (found.reached) return undefined;
      reach = found.reach;
    }
    const bound = clusterRef(input.cluster).config.archiveWaitSeconds;
    const refuse = (why: string) => nonRetryable(ErrorType.BadTarget, `${describeTarget(target)} is not reached by the archived WAL: ${reach}; ${why}. Nothing was touched.`);
    if (!input.waiting) {
      const nudge = await finishCurrentSegment(input.cluster, target);
      return { since: new Date().toISOString(), segment: nudge.segment, detail: `${reach}; ${nudge.note}` };
    }
    const { segment } = input.waiting;
    if (segment && records.has(segment)) throw refuse(`everything the server had written when plan switched WAL (to ${segment}) is archived, and replay would still end before the target`);
    const waited = (Date.now() - Date.parse(input.waiting.since)) / 1000;
    if (waited >= bound) throw refuse(`waited ${Math.round(waited)} s (clusters.${input.cluster}.archiveWaitSeconds) for archiving${segment ? ` of ${segment}` : ''}`);
    return { ...input.waiting, detail: `${reach}; waiting for archiving${segment ? ` of ${segment}` : ''} (${Math.round(waited)} of ${bound} s)` };
  }

  /**
   * Decodes archived segments in order (one at a time, each removed after pg_waldump read it) until
   * one shows that replay reaches a time or LSN target; else says how far the WAL goes.
   */
  async function scanWal(clusterName: string, target: RecoveryTarget, segments: string[]): Promise<{ reached: boolean; reach: string }> {
    const scratch = await mkdtemp(join(tmpdir(), 'pgwarden-waldump-'));
    const archive = WalArchive.forCluster(config, clusterName);
    const decryption = await openWalDecryption(config, env);
    const waldump = postgres.pgTool('pg_waldump', clusterRef(clusterName).config, 150000);
    let last: { segment: string; record?: bigint } | undefined;
    let lastEnd: { segment: string; micros: bigint } | undefined;
    try {
      for (const name of segments) {
        const { missing } = await decodeWalBatch(archive, [name], decryption, scratch);
        if (missing.length) break; // removed since it was listed: the WAL ends before it
        // It stops with an error at the end of the WAL; what it printed before is what counts. Times in UTC.
        const r = await execa(waldump, [join(scratch, name)], { reject: false, env: { ...TOOL_ENV, TZ: 'UTC' }, extendEnv: false });
        await rm(join(scratch, name), { force: true });
        const content = parseWaldump(r.stdout);
        if (reachesTarget(target, content)) return { reached: true, reach: '' };
        if (content.lastRecord !== undefined) last = { segment: name, record: content.lastRecord };
        const end = content.ends.at(-1);
        if (end) lastEnd = { segment: name, micros: end.micros };
        Context.current().heartbeat({ phase: 'prove-target', file: name });
      }
    } finally {
      await decryption?.keyring.remove();
      await rm(scratch, { recursive: true, force: true });
    }
    const lastCommit = lastEnd ? `its last commit or abort is at ${new Date(Number(lastEnd.micros / 1000n)).toISOString()} (in ${lastEnd.segment})` : `no commit or abort after ${segments[0]}`;
    return { reached: false, reach: `the archived WAL ends at ${last ? `LSN ${formatLsn(last.record!)} (in ${last.segment})` : segments.at(-1)}, ${lastCommit}` };
  }

  /**
   * Makes the live server finish its current WAL segment so that archiving takes it: pg_switch_wal,
   * after (time targets) a transaction that only takes a transaction id, whose commit record marks
   * "now". A standby cannot do either (it is read-only; the primary's archiving is waited for), nor a
   * server that is down; an LSN past the server's own position is refused at once.
   */
  async function finishCurrentSegment(clusterName: string, target: RecoveryTarget): Promise<{ segment?: string; note: string }> {
    const cluster = clusterRef(clusterName);
    try {
      return await postgres.withConnection(cluster, cluster.config.maintenanceDatabase, env, async (client) => {
        const { rows } = await client.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
        if (rows[0]!.rec) return { note: 'the cluster is a standby (read-only): waiting for the primary to archive more WAL' };
        if ('lsn' in target) {
          const { rows: at } = await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
          if (parseLsn(at[0]!.lsn) < parseLsn(target.lsn)) throw nonRetryable(ErrorType.BadTarget, `LSN ${target.lsn} is past the server's current WAL position ${at[0]!.lsn}. Nothing was touched.`);
        }
        if ('time' in target) await client.query('SELECT txid_current()');
        const { rows: sw } = await client.query<{ seg: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS seg');
        return { segment: sw[0]!.seg, note: `pgwarden switched the server to a new WAL segment and waits for ${sw[0]!.seg} to be archived` };
      });
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      return { note: `the server could not switch WAL (${(err as Error).message}): waiting for archiving` };
    }
  }

  /**
   * The timeline the live primary writes, or undefined when it is down, missing or a standby: what
   * "this cluster's history" means for the target (planRecoveryPath).
   */
  async function liveTimeline(clusterName: string): Promise<number | undefined> {
    const cluster = clusterRef(clusterName);
    try {
      return await postgres.withConnection(cluster, cluster.config.maintenanceDatabase, env, async (client) => {
        const { rows } = await client.query<{ seg: string | null }>('SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS seg');
        return rows[0]!.seg ? parseSegmentName(rows[0]!.seg)?.timeline : undefined;
      });
    } catch (err) {
      // A server that is down (or starting) has no timeline to follow; one that refuses pgwarden's
      // credentials would hide which history is the cluster's own, so that is said, not guessed past.
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('28')) {
        throw nonRetryable(ErrorType.ClusterControlFailed, `plan cannot read ${clusterName}'s current timeline: ${(err as Error).message}. Nothing was touched.`);
      }
      return undefined;
    }
  }

  /**
   * A restore point exists only as a WAL record: pg_waldump reads the archived WAL from the base
   * backup on (decoded into a scratch directory) for `RESTORE_POINT <name>`.
   */
  async function findRestorePoint(clusterName: string, name: string, walFiles: string[]): Promise<boolean> {
    const scratch = await mkdtemp(join(tmpdir(), 'pgwarden-waldump-'));
    const archive = WalArchive.forCluster(config, clusterName);
    const decryption = await openWalDecryption(config, env);
    try {
      const byTimeline = new Map<number, string[]>();
      const segments = walFiles.filter((f) => parseSegmentName(f));
      for (const file of segments) {
        const { timeline } = parseSegmentName(file)!;
        byTimeline.set(timeline, [...(byTimeline.get(timeline) ?? []), file]);
      }
      for (let i = 0; i < segments.length; i += WAL_BATCH) {
        const batch = segments.slice(i, i + WAL_BATCH);
        const { missing } = await decodeWalBatch(archive, batch, decryption, scratch);
        if (missing.length) throw nonRetryable(ErrorType.WalGap, `WAL file ${missing[0]} left the archive after it was listed`);
        Context.current().heartbeat({ phase: 'find-restore-point', file: batch.at(-1) });
      }
      const waldump = postgres.pgTool('pg_waldump', clusterRef(clusterName).config, 150000);
      for (const [timeline, files] of byTimeline) {
        // It stops with an error at the end of the WAL; what it printed before is what counts.
        const r = await execa(waldump, ['--path', scratch, '--timeline', String(timeline), '--rmgr', 'XLOG', files[0]!, files.at(-1)!], { reject: false, env: TOOL_ENV, extendEnv: false });
        if (r.stdout.split('\n').some((l) => l.includes(`RESTORE_POINT ${name}`) && l.trimEnd().endsWith(`RESTORE_POINT ${name}`))) return true;
      }
      return false;
    } finally {
      await decryption?.keyring.remove();
      await rm(scratch, { recursive: true, force: true });
    }
  }

  /**
   * The stage step, in two parts that can run side by side: the base backup laid into
   * `<work>/data` (owner of the live data directory, mode 0700) and the WAL files decoded into
   * `<work>/wal`, every checksum verified. In-place mode stages both before asking for approval;
   * a rehearsal starts recovery as soon as the base is there and decodes WAL while it replays.
   */
  async function stageRecovery(plan: RecoveryPlan): Promise<{ bytes: number; walFiles: number; dataDirectory: 'present' | 'missing' | 'empty' }> {
    const [base, wal] = await Promise.all([stageBaseBackup(plan), stageWal(plan)]);
    // What the approval will be asked for: a rebuilt host has nothing to stop or keep.
    const found = !existsSync(plan.dataDirectory) ? 'missing' : (await readdir(plan.dataDirectory)).length === 0 ? 'empty' : 'present';
    return { bytes: base.bytes + wal.bytes, walFiles: wal.walFiles, dataDirectory: found };
  }

  /** The base backup unpacked into `<work>/data`. A retry unpacks again; a done one has its marker. */
  async function stageBaseBackup(plan: RecoveryPlan): Promise<{ bytes: number }> {
    const ctx = Context.current();
    const marker = join(plan.workDirectory, 'BASE-STAGED');
    if (existsSync(marker)) return JSON.parse(await readFile(marker, 'utf8')) as { bytes: number };
    const owner = await dataOwner(plan.dataDirectory);
    const dataDir = join(plan.workDirectory, 'data');
    await rm(dataDir, { recursive: true, force: true });
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    // pg_ctl writes its log here and a rehearsal puts its socket here, as the data directory's owner.
    await chown(plan.workDirectory, owner.uid, owner.gid);

    const repo = LocalRepository.forCluster(config, plan.cluster);
    const dir = repo.baseBackupDir(plan.cluster, plan.backupId);
    const manifest = await repo.readBaseManifest(dir);
    if (!manifest) throw nonRetryable(ErrorType.NoBackup, `base backup ${plan.backupId} is gone from repository "${repo.name}"`);
    const base = manifest.artifacts.find((a) => a.role === 'base')!;
    let read = 0;
    const timer = setInterval(() => ctx.heartbeat({ phase: 'stage-base', bytes: read, totalBytes: base.bytes }), 2000);
    const release = await markInUse(dir, `pitr-${plan.workDirectory.split('-').at(-1)}`); // retention keeps it meanwhile
    const signal = ctx.cancellationSignal;
    const keyring = manifest.encryption ? await openKeyring(privateKeyFile()) : undefined;
    try {
      const tools = startChain([
        ...(keyring ? [() => keyring.decrypt({ passphrase: passphrase(), signal })] : []),
        ...(manifest.compression.algorithm === 'zstd' ? [(stdin: 'pipe' | Readable) => startTool('zstd -d', 'zstd', ['-d', '-c', '-q'], { stdin, env: TOOL_ENV, signal })] : []),
        (stdin) => startTool('tar', 'tar', ['-x', '-f', '-', '-C', dataDir, '--no-same-owner'], { stdin, stdout: 'ignore', env: TOOL_ENV, signal }),
      ]);
      const results = await Promise.allSettled([feedFile(join(dir, base.name), tools[0]!.child.stdin!, { signal, progress: (b) => (read = b) }), ...tools.map((t) => t.exited)]);
      const fed = results[0]!;
      if (fed.status === 'fulfilled' && (fed.value.sha256 !== base.sha256 || fed.value.bytes !== base.bytes)) {
        throw nonRetryable(ErrorType.IntegrityError, `${join(dir, base.name)} is corrupt: sha256 ${fed.value.sha256}, manifest says ${base.sha256}`);
      }
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw retryable(ErrorType.RecoveryFailed, `unpacking base backup ${plan.backupId} failed: ${(failed.reason as Error).message}`);
    } finally {
      clearInterval(timer);
      await keyring?.remove();
      await release();
    }
    await execa('chown', ['-R', `${owner.uid}:${owner.gid}`, dataDir]);
    await chmod(dataDir, 0o700);
    await writeFile(marker, JSON.stringify({ bytes: read }));
    return { bytes: read };
  }

  /**
   * The plan's WAL files decoded into `<work>/wal`, history files first (then `.histories`), then
   * the segments in batches, two at a time (then `.complete`). Each file appears by rename, complete; a
   * retry skips what is there, so a recovery reading the directory meanwhile is never disturbed.
   */
  async function stageWal(plan: RecoveryPlan): Promise<{ bytes: number; walFiles: number }> {
    const ctx = Context.current();
    const walDir = join(plan.workDirectory, 'wal');
    await mkdir(walDir, { recursive: true });
    // Scratch directories of an attempt that died (decrypted WAL in them) go first.
    for (const f of await readdir(walDir)) if (f.startsWith('.batch-')) await rm(join(walDir, f), { recursive: true, force: true });
    const signal = ctx.cancellationSignal;
    const archive = WalArchive.forCluster(config, plan.cluster);
    const decryption = await openWalDecryption(config, env);
    let bytes = 0;
    let done = 0;
    const timer = setInterval(() => ctx.heartbeat({ phase: 'stage-wal', walFiles: done, of: plan.walFiles.length }), 2000);
    try {
      const decodeOne = async (name: string) => {
        signal.throwIfAborted();
        const path = join(walDir, name);
        if (!existsSync(path)) {
          const raw = await decodeWal(archive, name, decryption);
          if (!raw) throw nonRetryable(ErrorType.WalGap, `WAL file ${name} left the archive after the plan step`);
          await writeFile(join(walDir, `.${name}.tmp`), raw);
          await rename(join(walDir, `.${name}.tmp`), path);
          bytes += raw.length;
        }
        done++;
      };
      const histories = plan.walFiles.filter((f) => HISTORY_NAME.test(f));
      const queue = plan.walFiles.filter((f) => !HISTORY_NAME.test(f) && !existsSync(join(walDir, f)));
      done = plan.walFiles.length - histories.length - queue.length;
      // One at a time first: gpg-agent unlocks the key once and caches it; concurrent first
      // unlocks over loopback pinentry race and fail as "bad passphrase".
      for (const h of histories) await decodeOne(h);
      await writeFile(join(walDir, '.histories'), '');
      // Segments in batches (one gpg and one zstd process each, decodeWalBatch), oldest first, so
      // a recovery replaying meanwhile finds what it asks for next.
      const decodeBatch = async (names: string[]) => {
        signal.throwIfAborted();
        const result = await decodeWalBatch(archive, names, decryption, walDir, signal);
        if (result.missing.length) throw nonRetryable(ErrorType.WalGap, `WAL file ${result.missing[0]} left the archive after the plan step`);
        bytes += result.bytes;
        done += names.length;
      };
      if (queue.length) await decodeBatch(queue.splice(0, WAL_BATCH));
      const worker = async () => {
        for (let names = queue.splice(0, WAL_BATCH); names.length; names = queue.splice(0, WAL_BATCH)) await decodeBatch(names);
      };
      await Promise.all([worker(), worker()]);
      await writeFile(join(walDir, '.complete'), '');
    } finally {
      clearInterval(timer);
      await decryption?.keyring.remove();
    }
    return { bytes, walFiles: plan.walFiles.length };
  }

  /** Tells a recovery waiting for staged WAL that no more will come: it stops (restore_command exits 200). */
  async function abortWalStaging(plan: RecoveryPlan): Promise<void> {
    const walDir = join(plan.workDirectory, 'wal');
    if (existsSync(walDir)) await writeFile(join(walDir, '.failed'), '');
  }

  function privateKeyFile(): string {
    const file = config.encryption?.privateKeyFile;
    if (!file) throw nonRetryable(ErrorType.KeyUnreadable, 'the backup is encrypted and this worker has no encryption.privateKeyFile');
    return file;
  }

  function passphrase(): string | undefined {
    const name = config.encryption?.passphraseEnv;
    return name ? env[name] : undefined;
  }

  /** Runs pg_ctl as the data directory's owner (pg_ctl refuses root). */
  const pgCtl = (clusterConfig: ClusterConfig, dataDir: string, args: string[], options: { reject?: boolean } = {}) => serverTool('pg_ctl', clusterConfig, dataDir, args, options);

  /** A server program (pg_ctl, postgres) on `dataDir`, as the data directory's owner, of the data directory's major version. */
  async function serverTool(name: string, clusterConfig: ClusterConfig, dataDir: string, args: string[], options: { reject?: boolean } = {}) {
    const owner = await stat(dataDir);
    // The server is down often enough here: its major version comes from the data directory.
    const major = Number((await readFile(join(dataDir, 'PG_VERSION'), 'utf8').catch(() => '0')).trim());
    const tool = postgres.pgTool(name, clusterConfig, major * 10000);
    return execa(tool, ['-D', dataDir, ...args], {
      uid: process.getuid?.() === 0 ? owner.uid : undefined,
      gid: process.getuid?.() === 0 ? owner.gid : undefined,
      env: TOOL_ENV,
      extendEnv: false,
      stdin: 'ignore',
      reject: options.reject ?? true,
      cwd: '/',
    });
  }

  async function isRunning(clusterConfig: ClusterConfig, dataDir: string): Promise<boolean> {
    if (!existsSync(join(dataDir, 'PG_VERSION'))) return false; // missing or empty (a rebuilt host): nothing runs there
    const r = await pgCtl(clusterConfig, dataDir, ['status'], { reject: false });
    return r.exitCode === 0;
  }

  /** The stop step: pre-stop hook, then a clean (fast) shutdown, confirmed. Stopped already is fine. */
  async function stopCluster(plan: RecoveryPlan): Promise<string> {
    await runClusterHook(plan, 'preRestore');
    if (!(await isRunning(cc(plan), plan.dataDirectory))) return 'not running';
    const r = await pgCtl(cc(plan), plan.dataDirectory, ['stop', '-m', 'fast', '-w', '-t', '600'], { reject: false });
    if (r.exitCode !== 0 || (await isRunning(cc(plan), plan.dataDirectory))) {
      throw retryable(ErrorType.ClusterControlFailed, `pg_ctl stop of ${plan.dataDirectory} failed: ${r.stderr || r.stdout}`);
    }
    return 'stopped';
  }

  /**
   * `latest`, before the stop: the live server finishes its current WAL segment (pg_switch_wal) and
   * the archive is waited for until it has it, bounded by `archiveWaitSeconds`. The first call
   * switches; the workflow asks again with the returned wait until `done`. An archive still behind
   * at the bound is no reason to stop: the segments it lacks come from the stopped server's pg_wal.
   */
  async function archiveCurrentWal(input: { plan: RecoveryPlan; waiting?: ArchiveWait }): Promise<ArchiveWait & { done: boolean }> {
    const cluster = clusterRef(input.plan.cluster);
    let waiting = input.waiting;
    if (!waiting) {
      try {
        const segment = await postgres.withConnection(cluster, cluster.config.maintenanceDatabase, env, async (client) => {
          const { rows } = await client.query<{ seg: string | null }>('SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_switch_wal()) END AS seg');
          return rows[0]!.seg ?? undefined;
        });
        if (!segment) return { since: new Date().toISOString(), done: true, detail: 'the cluster is a standby: no WAL switch; its pg_wal supplies what the archive lacks' };
        waiting = { since: new Date().toISOString(), segment, detail: `switched WAL; waiting for ${segment} to be archived` };
      } catch (err) {
        return { since: new Date().toISOString(), done: true, detail: `the server could not switch WAL (${(err as Error).message}); its pg_wal supplies what the archive lacks` };
      }
    }
    const archive = WalArchive.forCluster(config, input.plan.cluster);
    if (await archive.record(waiting.segment!)) return { ...waiting, done: true, detail: `the archive has every segment up to ${waiting.segment}` };
    const waited = (Date.now() - Date.parse(waiting.since)) / 1000;
    const bound = cluster.config.archiveWaitSeconds;
    if (waited >= bound) return { ...waiting, done: true, detail: `the archive still lacks ${waiting.segment} after ${Math.round(waited)} s; the stopped server's pg_wal supplies what it lacks` };
    return { ...waiting, done: false, detail: `waiting for ${waiting.segment} to be archived (${Math.round(waited)} of ${bound} s)` };
  }

  /**
   * `latest`, after the stop and before the swap: the WAL the archive got since the plan is staged,
   * and the stopped server's own segments the archive lacks (complete ones, and the last, partial
   * one) are copied into the staged WAL after it, so replay ends at the last committed transaction.
   * A segment in pg_wal counts when its first page says it is that segment (recycled and
   * preallocated files do not). One that the archive has with other content fails the run here,
   * before the swap, naming both.
   */
  async function gatherUnarchivedWal(plan: RecoveryPlan): Promise<{ fromArchive: string[]; fromPgWal: string[]; archived: string[]; notArchived?: string }> {
    const pgWal = join(plan.dataDirectory, 'pg_wal');
    const walDir = join(plan.workDirectory, 'wal');
    const local = new Map<bigint, string>();
    const timelines = new Set<number>();
    for (const name of existsSync(pgWal) ? await readdir(pgWal) : []) {
      const seg = parseSegmentName(name);
      if (!seg) continue;
      const header = Buffer.alloc(16);
      const file = await open(join(pgWal, name), 'r');
      try {
        await file.read(header, 0, 16, 0);
      } finally {
        await file.close();
      }
      if (!headerMatchesSegment(header, name)) continue;
      timelines.add(seg.timeline);
      if (seg.timeline === plan.targetTimeline) local.set(seg.segment, name);
    }
    const newer = [...timelines].filter((t) => t > plan.targetTimeline);
    if (newer.length) {
      throw nonRetryable(ErrorType.WalGap, `the stopped server wrote timeline ${Math.max(...newer)}, which the archive did not know when the plan chose timeline ${plan.targetTimeline} (its history file is not archived); nothing was swapped`);
    }
    const archive = WalArchive.forCluster(config, plan.cluster);
    const records = await archive.list();
    // Every segment in both places is compared, whether or not the archive's copy is staged already.
    for (const [segno, name] of local) {
      const record = records.get(name);
      if (!record) continue;
      const { sha256 } = await hashFile(join(pgWal, name));
      if (sha256 !== record.rawSha256) {
        throw nonRetryable(
          ErrorType.WalConflict,
          `WAL segment ${name} differs between the archive (${join(archive.dir, record.stored)}, sha256 ${record.rawSha256}) and ${join(pgWal, name)} (sha256 ${sha256}); neither is used silently: nothing was swapped`,
        );
      }
      Context.current().heartbeat({ phase: 'compare-wal', file: name, segment: String(segno) });
    }
    const staged = plan.walFiles.map((f) => parseSegmentName(f)).filter((p) => p !== undefined);
    const from = staged.length ? staged.at(-1)!.segment + 1n : segmentOf(parseLsn(plan.backupStopLsn));
    const to = [...local.keys()].reduce((a, b) => (b > a ? b : a), from - 1n);
    const fromArchive: string[] = [];
    const fromPgWal: string[] = [];
    // Up to the server's last segment, and on as far as the archive goes (a server with no pg_wal left).
    for (let segno = from; segno <= to || records.has(segmentName(plan.targetTimeline, segno)); segno++) {
      const name = segmentName(plan.targetTimeline, segno);
      if (existsSync(join(walDir, name))) continue;
      if (records.has(name)) fromArchive.push(name);
      else if (local.has(segno)) fromPgWal.push(name);
      else throw nonRetryable(ErrorType.WalGap, `WAL segment ${name} is neither in the archive nor in ${pgWal}: replay to "latest" would stop short of the stopped server's last transaction; nothing was swapped`);
    }
    const decryption = fromArchive.length ? await openWalDecryption(config, env) : undefined;
    try {
      for (let i = 0; i < fromArchive.length; i += WAL_BATCH) {
        const { missing } = await decodeWalBatch(archive, fromArchive.slice(i, i + WAL_BATCH), decryption, walDir);
        if (missing.length) throw nonRetryable(ErrorType.WalGap, `WAL file ${missing[0]} left the archive while it was being staged`);
        Context.current().heartbeat({ phase: 'stage-wal', file: fromArchive[i] });
      }
    } finally {
      await decryption?.keyring.remove();
    }
    for (const name of fromPgWal) {
      await copyFile(join(pgWal, name), join(walDir, `.${name}.tmp`));
      await chmod(join(walDir, `.${name}.tmp`), 0o644);
      await rename(join(walDir, `.${name}.tmp`), join(walDir, name));
    }
    // The complete ones go into the archive too, as the server's archiver would have put them
    // (the partial last one never: it is archived as `.partial` after promotion): the archive
    // stays continuous, and the base backups before the recovery keep reaching the new timeline.
    // Best effort: an archive that refuses (full, say) does not stop a recovery that has its WAL.
    const partial = segmentName(plan.targetTimeline, to);
    const archived: string[] = [];
    let notArchived: string | undefined;
    const owner = await stat(archive.dir);
    for (const name of fromPgWal.filter((n) => n !== partial)) {
      try {
        const pushed = await pushWalFile(walPushSettingsFor(config, plan.cluster), join(pgWal, name), name);
        const record = await archive.record(name);
        // The archive belongs to the server's user (wal-push runs as it): so do these files.
        if (process.getuid?.() === 0 && record) for (const f of [record.stored, walRecordName(name)]) await chown(join(archive.dir, f), owner.uid, owner.gid);
        if (pushed.outcome === 'stored') archived.push(name);
      } catch (err) {
        notArchived = `${name} and after were not archived: ${(err as Error).message}`;
        break;
      }
    }
    return { fromArchive, fromPgWal, archived, ...(notArchived ? { notArchived } : {}) };
  }

  /** The swap step: the live data directory moves aside (kept), the staged one takes its place. */
  async function swapDataDirectory(plan: RecoveryPlan): Promise<{ movedAside: boolean }> {
    const staged = join(plan.workDirectory, 'data');
    const noOriginal = join(plan.workDirectory, NO_ORIGINAL);
    if (!existsSync(plan.asideDirectory) && !existsSync(noOriginal)) {
      if (await isRunning(cc(plan), plan.dataDirectory)) throw nonRetryable(ErrorType.ClusterControlFailed, `refusing to move ${plan.dataDirectory}: the server is running`);
      // A rebuilt host has no data directory: nothing to keep, and a rollback leaves it missing again.
      if (existsSync(plan.dataDirectory)) await rename(plan.dataDirectory, plan.asideDirectory);
      else await writeFileAtomic(noOriginal, `${plan.dataDirectory} did not exist when the recovered one took its place\n`);
    }
    if (existsSync(staged)) await rename(staged, plan.dataDirectory);
    if (!existsSync(plan.dataDirectory)) throw nonRetryable(ErrorType.RecoveryFailed, `neither the staged data directory nor ${plan.dataDirectory} exists`);
    return { movedAside: !existsSync(noOriginal) };
  }

  /** The data directory recovery runs in: the live path (in-place) or the staged copy (rehearsal). */
  const recoveryDir = (plan: RecoveryPlan) => (plan.mode === 'in-place' ? plan.dataDirectory : join(plan.workDirectory, 'data'));

  /** Where a server pgwarden starts in the live data directory writes its output (pg_ctl -l): the config's logFile, else beside the data directory. */
  const serverLogOf = (plan: RecoveryPlan) => cc(plan).logFile ?? `${plan.dataDirectory}.log`;

  /**
   * This run's recovery log, outside the work directory so it outlives it: in place
   * `<dataDirectory>.pitr-<id>.log` beside the moved-aside directory; a rehearsal's
   * `<work directory>.log` (removed with the work directory when the rehearsal succeeds).
   */
  const recoveryLogOf = (plan: RecoveryPlan) => (plan.mode === 'in-place' ? `${plan.asideDirectory.replace('.pre-pitr-', '.pitr-')}.log` : `${plan.workDirectory}.log`);

  /** Who owns the cluster's files: the data directory's owner or, on a rebuilt host where it is missing, its parent's. */
  async function dataOwner(dataDirectory: string): Promise<{ uid: number; gid: number }> {
    const existing = existsSync(dataDirectory) ? dataDirectory : dirname(dataDirectory);
    const owner = await stat(existing).catch(() => {
      throw nonRetryable(ErrorType.InvalidInput, `neither ${dataDirectory} nor ${existing} exists on ${hostname()}: create ${existing} owned by the PostgreSQL user`);
    });
    if (owner.uid === 0 && process.getuid?.() === 0) {
      throw nonRetryable(ErrorType.InvalidInput, `${existing} on ${hostname()} is owned by root and PostgreSQL refuses to run as root: create ${dataDirectory} owned by the PostgreSQL user (mkdir -m 700, chown postgres:postgres)`);
    }
    return owner;
  }

  /** Makes sure the server, as the data directory's owner, can append to `file`; returns where this start's output begins. */
  async function prepareLog(file: string, owner: { uid: number; gid: number }): Promise<number> {
    await mkdir(dirname(file), { recursive: true });
    const created = !existsSync(file); // an existing log keeps its owner and group (e.g. postgres:adm)
    await (await open(file, 'a', 0o600)).close();
    if (created && process.getuid?.() === 0) await chown(file, owner.uid, owner.gid);
    return (await stat(file)).size;
  }

  /**
   * The size of each file in the server's log_directory before it starts: a logging collector
   * appends to an existing file of the same name (a fixed or day-named log_filename, a file carried
   * in the base backup), and what is already there is an earlier run's, not this start's.
   */
  async function collectorOffsets(clusterConfig: ClusterConfig, dataDir: string): Promise<Record<string, number>> {
    const r = await serverTool('postgres', clusterConfig, dataDir, ['-C', 'log_directory'], { reject: false });
    const setting = r.exitCode === 0 ? String(r.stdout).trim() : '';
    if (!setting) return {};
    const dir = isAbsolute(setting) ? setting : join(dataDir, setting);
    const offsets: Record<string, number> = {};
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const info = await stat(join(dir, name)).catch(() => undefined);
      if (info?.isFile()) offsets[join(dir, name)] = info.size;
    }
    return offsets;
  }

  /**
   * What the server logged since it was started: pg_ctl's log file from `offset` on and, when its
   * logging_collector is on, the collector's current files (named in `current_logfiles`, written
   * by this start: a stale one copied with the base backup is older), each from its size before the start.
   */
  async function readServerLog(dataDir: string, logFile: string, offset: number, since: number, collected: Record<string, number> = {}): Promise<string> {
    const parts = [await readLogPart(logFile, offset)];
    const current = join(dataDir, 'current_logfiles');
    const fresh = (await stat(current).catch(() => undefined))?.mtimeMs ?? 0;
    if (fresh >= since - 2000) {
      for (const line of (await readFile(current, 'utf8').catch(() => '')).split('\n')) {
        const name = line.slice(line.indexOf(' ') + 1).trim();
        if (!line.includes(' ') || !name) continue;
        const file = isAbsolute(name) ? name : join(dataDir, name);
        // A file shorter than it was was truncated (log_truncate_on_rotation): all of it is new.
        const from = collected[file] ?? 0;
        const size = (await stat(file).catch(() => undefined))?.size ?? 0;
        parts.push(`--- ${file} ---\n${await readLogPart(file, size < from ? 0 : from)}`);
      }
    }
    return parts.join('\n');
  }

  /** In place, the recovery log is written beside the moved-aside directory (again by a retry); a rehearsal's server writes it itself. Returns its path. */
  async function keepRecoveryLog(plan: RecoveryPlan, text: string): Promise<string> {
    const file = recoveryLogOf(plan);
    if (plan.mode === 'in-place') {
      await writeFileAtomic(file, text);
      await chmod(file, 0o600); // a log can quote statements and their data
    }
    return file;
  }

  /** Starts the original data directory again (a rollback), logging where the cluster logs. */
  async function startOriginal(plan: RecoveryPlan): Promise<void> {
    const logFile = serverLogOf(plan);
    await prepareLog(logFile, await stat(plan.dataDirectory));
    const r = await pgCtl(cc(plan), plan.dataDirectory, ['start', '-w', '-t', '600', '-l', logFile], { reject: false });
    if (r.exitCode !== 0) throw retryable(ErrorType.ClusterControlFailed, `rolled back, but the original server did not start (log ${logFile}): ${r.stderr || r.stdout}`);
  }

  /**
   * The recover step: recovery settings for PostgreSQL 12+ (recovery.signal, never recovery.conf),
   * start, follow replay until promoted. After a worker crash it picks up the running server.
   */
  async function recover(plan: RecoveryPlan): Promise<RecoveryOutcome> {
    const ctx = Context.current();
    const started = Date.now();
    const dataDir = recoveryDir(plan);
    // In place, the server logs where the cluster logs (it keeps running with this output); a
    // rehearsal's scratch server logs beside its work directory, kept if the rehearsal fails.
    const logFile = plan.mode === 'in-place' ? serverLogOf(plan) : recoveryLogOf(plan);
    const settingsMarker = join(plan.workDirectory, 'SETTINGS');
    let port = clusterRef(plan.cluster).config.port;
    let logOffset = 0;
    let since = Date.now();
    let collected: Record<string, number> = {};
    if (!existsSync(settingsMarker)) {
      if (plan.mode === 'rehearsal') port = await freePortOnLoopback();
      const walDir = join(plan.workDirectory, 'wal');
      const settings: Record<string, string> = {
        restore_command: stagedRestoreCommand(walDir),
        // The plan's timeline, not 'latest': a branch an earlier rolled-back recovery left in the
        // archive is newer, and is not this cluster's history.
        recovery_target_timeline: String(plan.targetTimeline),
        recovery_target_action: 'promote',
      };
      const t = plan.target;
      if ('time' in t) settings.recovery_target_time = t.time;
      else if ('lsn' in t) settings.recovery_target_lsn = t.lsn;
      else if ('name' in t) settings.recovery_target_name = t.name;
      if (plan.mode === 'rehearsal') {
        // A drill never reaches the live cluster's archive or port.
        // Its log is its own: everything on stderr into pg_ctl's log file, never the live cluster's log_directory.
        Object.assign(settings, { port: String(port), listen_addresses: '127.0.0.1', unix_socket_directories: plan.workDirectory, archive_mode: 'off', logging_collector: 'off', log_destination: 'stderr' });
      }
      const owner = await stat(dataDir);
      await writeRecoverySettings(dataDir, settings, owner);
      await writeFile(join(dataDir, 'recovery.signal'), '');
      await chown(join(dataDir, 'recovery.signal'), owner.uid, owner.gid);
      // This start's output begins at the log's current end (the file is durable and shared across starts).
      logOffset = await prepareLog(logFile, owner);
      collected = await collectorOffsets(cc(plan), dataDir);
      // Atomic: a worker killed here must leave either no marker (settings written again) or a whole one.
      await writeFileAtomic(settingsMarker, JSON.stringify({ port, logOffset, since, collected }));
    } else {
      ({ port, logOffset = 0, since = 0, collected = {} } = JSON.parse(await readFile(settingsMarker, 'utf8')) as { port: number; logOffset?: number; since?: number; collected?: Record<string, number> });
    }
    const serverLog = () => readServerLog(dataDir, logFile, logOffset, since, collected);
    let startedAt = 0;
    if (!(await isRunning(cc(plan), dataDir))) {
      // -W: replay can take hours; this loop follows it and heartbeats instead of pg_ctl waiting.
      const r = await pgCtl(cc(plan), dataDir, ['start', '-l', logFile, '-W'], { reject: false });
      if (r.exitCode !== 0) throw nonRetryable(ErrorType.RecoveryFailed, `pg_ctl start failed (log ${await keepRecoveryLog(plan, await serverLog())}): ${r.stderr || r.stdout}`);
      startedAt = Date.now();
    }
    const cluster = clusterRef(plan.cluster);
    const host = plan.mode === 'rehearsal' ? '127.0.0.1' : cluster.config.host;
    for (;;) {
      if (ctx.cancellationSignal.aborted) throw new Error('cancelled');
      const state = await probe(cluster, host, port).catch(() => undefined);
      if (state && !state.inRecovery) {
        const log = await serverLog();
        await keepRecoveryLog(plan, log);
        return {
          timeline: state.timeline,
          reachedLsn: state.lsn,
          stoppedAt: recoveryStopLine(log),
          port,
          recoverSeconds: (Date.now() - started) / 1000,
        };
      }
      ctx.heartbeat({ phase: 'replay', lsn: state?.lsn });
      // A server that just started may not have written postmaster.pid yet.
      if (!state && Date.now() - startedAt > 5000 && !(await isRunning(cc(plan), dataDir))) {
        const log = await serverLog();
        throw nonRetryable(ErrorType.RecoveryFailed, `the server stopped during recovery (log ${await keepRecoveryLog(plan, log)}): ${logTail(log)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /**
   * Recovery settings go at the end of postgresql.auto.conf (later lines win). A repeated attempt
   * replaces its own earlier block instead of stacking another; the file is swapped in atomically
   * and keeps the data directory owner's ownership.
   */
  async function writeRecoverySettings(dataDir: string, settings: Record<string, string>, owner: { uid: number; gid: number }): Promise<void> {
    const file = join(dataDir, 'postgresql.auto.conf');
    const current = existsSync(file) ? await readFile(file, 'utf8') : '';
    const at = current.indexOf(RECOVERY_BLOCK_HEADER);
    const kept = at === -1 ? current : current.slice(0, at);
    // Quoted as ALTER SYSTEM does: the config parser treats both ' and \ specially.
    const block = Object.entries(settings).map(([k, v]) => `${k} = '${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`).join('\n');
    await writeFileAtomic(file, `${kept.replace(/\n*$/, '\n')}${RECOVERY_BLOCK_HEADER}${block}\n`);
    await chown(file, owner.uid, owner.gid);
    await chmod(file, 0o600);
  }

  async function probe(cluster: postgres.ClusterRef, host: string, port: number): Promise<{ inRecovery: boolean; lsn: string; timeline: number }> {
    return postgres.withConnection(at(cluster, host, port), cluster.config.maintenanceDatabase, env, async (client) => {
      const { rows } = await client.query<{ r: boolean; lsn: string; tli: number }>(
        `SELECT pg_is_in_recovery() AS r,
                CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text AS lsn,
                (SELECT timeline_id FROM pg_control_checkpoint()) AS tli`,
      );
      return { inRecovery: rows[0]!.r, lsn: rows[0]!.lsn, timeline: Number(rows[0]!.tli) };
    });
  }

  /**
   * The verify step: the configured SQL checks on the recovered server; recovery settings removed
   * (in-place); the post-start hook; a rehearsal's scratch cluster stopped and removed.
   */
  async function verifyRecovery(plan: RecoveryPlan & { port: number }): Promise<{ checks: { database: string; name: string; value: number }[] }> {
    const cluster = clusterRef(plan.cluster);
    const host = plan.mode === 'rehearsal' ? '127.0.0.1' : cluster.config.host;
    const checks: { database: string; name: string; value: number }[] = [];
    for (const [database, list] of Object.entries(config.verification.checks)) {
      await postgres.withConnection(at(cluster, host, plan.port), database, env, async (client) => {
        for (const check of list) {
          const { rows } = await client.query(check.sql);
          const value = Number(Object.values(rows[0] ?? {})[0]);
          if (!(value >= check.min)) throw nonRetryable(ErrorType.VerificationFailed, `check "${check.name}" on ${database} returned ${value}, expected at least ${check.min}`);
          checks.push({ database, name: check.name, value });
        }
      });
    }
    if (plan.mode === 'in-place') {
      // The recovery settings served their purpose; a later crash recovery must not see them.
      await postgres.withConnection(at(cluster, host, plan.port), cluster.config.maintenanceDatabase, env, async (client) => {
        for (const s of ['restore_command', 'recovery_target_time', 'recovery_target_lsn', 'recovery_target_name', 'recovery_target_timeline', 'recovery_target_action']) await client.query(`ALTER SYSTEM RESET ${s}`);
        await client.query('SELECT pg_reload_conf()');
      });
      await runClusterHook(plan, 'postRestore');
    }
    return { checks };
  }

  /** Removes the working directory (staged copy, decoded WAL); in rehearsal mode, stops the scratch server first. */
  async function cleanupRecovery(plan: RecoveryPlan & { keepLog?: boolean }): Promise<{ keptLog?: string }> {
    const scratch = join(plan.workDirectory, 'data');
    if (existsSync(join(scratch, 'postmaster.pid'))) await pgCtl(cc(plan), scratch, ['stop', '-m', 'immediate', '-w'], { reject: false });
    await rm(plan.workDirectory, { recursive: true, force: true });
    // A rehearsal's log goes with it, unless the rehearsal failed: then it is kept, and named.
    if (plan.mode !== 'rehearsal') return {};
    if (!plan.keepLog) await rm(recoveryLogOf(plan), { force: true });
    return plan.keepLog && existsSync(recoveryLogOf(plan)) ? { keptLog: recoveryLogOf(plan) } : {};
  }

  /**
   * After a failure past the swap: stop whatever runs in the data directory, keep it as
   * `<data>.failed-pitr-<id>` for a post-mortem, move the original back and start it.
   */
  async function rollbackRecovery(plan: RecoveryPlan & { reason: string }): Promise<string> {
    const failed = plan.asideDirectory.replace('.pre-pitr-', '.failed-pitr-');
    if (existsSync(join(plan.workDirectory, NO_ORIGINAL))) {
      // A rebuilt host: there was no data directory to go back to. The failed one is kept aside and
      // the path is left missing, as it was found.
      if (existsSync(plan.dataDirectory)) {
        if (await isRunning(cc(plan), plan.dataDirectory)) await pgCtl(cc(plan), plan.dataDirectory, ['stop', '-m', 'immediate', '-w'], { reject: false });
        await rm(failed, { recursive: true, force: true });
        await rename(plan.dataDirectory, failed);
      }
      await runClusterHook(plan, 'postRestore');
      return `${plan.dataDirectory} did not exist before the recovery and is missing again; the failed recovery is kept as ${failed}`;
    }
    if (!existsSync(plan.asideDirectory)) {
      // The swap never happened: the live directory is where it was. Make sure it runs (an empty
      // one, a rebuilt host's, has nothing to run).
      if (!(await isRunning(cc(plan), plan.dataDirectory)) && existsSync(join(plan.dataDirectory, 'PG_VERSION'))) await startOriginal(plan);
      // Also where an attempt that moved the original back died (worker killed) before or in the
      // hook: the applications stopped by `stop` are started again all the same.
      await runClusterHook(plan, 'postRestore');
      if (!existsSync(join(plan.dataDirectory, 'PG_VERSION'))) return `${plan.dataDirectory} is as it was found, with no cluster in it`;
      return 'the original data directory is in place and running';
    }
    if (existsSync(plan.dataDirectory)) {
      if (await isRunning(cc(plan), plan.dataDirectory)) await pgCtl(cc(plan), plan.dataDirectory, ['stop', '-m', 'immediate', '-w'], { reject: false });
      await rm(failed, { recursive: true, force: true });
      await rename(plan.dataDirectory, failed);
    }
    await rename(plan.asideDirectory, plan.dataDirectory);
    // An empty original (a rebuilt host's) goes back empty, as found: nothing to start.
    if (existsSync(join(plan.dataDirectory, 'PG_VERSION'))) await startOriginal(plan);
    await runClusterHook(plan, 'postRestore');
    return `rolled back to the original data directory after: ${plan.reason}`;
  }

  /** The cluster's hook, when one is configured; a cancelled step lets it finish (the stop waits for it). */
  async function runClusterHook(plan: RecoveryPlan, name: 'preRestore' | 'postRestore'): Promise<void> {
    const argv = clusterRef(plan.cluster).config.hooks[name];
    if (argv) await runHook({ hook: name, argv, cluster: plan.cluster, failure: ErrorType.ClusterControlFailed });
  }

  return { planRecovery, stageRecovery, stageBaseBackup, stageWal, abortWalStaging, archiveCurrentWal, stopCluster, gatherUnarchivedWal, swapDataDirectory, recover, verifyRecovery, cleanupRecovery, rollbackRecovery };
}

/**
 * restore_command reading the staged WAL. A segment not there yet is waited for until staging says
 * `.complete` (history files: `.histories`), so replay can start while WAL is still being decoded;
 * then a missing file is "not found", as PostgreSQL expects at the end of the archive. If staging
 * failed (`.failed`), exit 200: above 125, PostgreSQL stops recovery instead of ending it early.
 */
export function stagedRestoreCommand(walDir: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return (
    `f=${q(walDir)}/'%f'; case '%f' in ????????????????????????) m=${q(`${walDir}/.complete`)};; *) m=${q(`${walDir}/.histories`)};; esac; ` +
    `while [ ! -e "$f" ] && [ ! -e "$m" ]; do [ -e ${q(`${walDir}/.failed`)} ] && exit 200; sleep 0.1; done; cp "$f" '%p'`
  );
}

function recoveryStopLine(text: string): string | undefined {
  const lines = text.split('\n').reverse();
  // Where it stopped says the most; else how far the WAL went.
  const line = lines.find((l) => /recovery stopping/.test(l)) ?? lines.find((l) => /last completed transaction|redo done at/.test(l));
  return line?.replace(/^.*?(LOG|FATAL):\s+/, '');
}

function logTail(text: string): string {
  const lines = text.trim().split('\n');
  return (lines.filter((l) => /FATAL|PANIC|ERROR/.test(l)).slice(-3).join(' | ') || lines.slice(-3).join(' | ')).slice(0, 1500);
}

/** A log file from `offset` on (its last LOG_READ_BYTES at most); empty when it is missing. */
async function readLogPart(file: string, offset: number): Promise<string> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return '';
  try {
    const size = (await handle.stat()).size;
    const from = Math.max(offset, size - LOG_READ_BYTES, 0);
    const buffer = Buffer.alloc(Math.max(size - from, 0));
    await handle.read(buffer, 0, buffer.length, from);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

// What point-in-time recovery does to a cluster's data directory: stage a base backup and its WAL
// beside it, stop the server, move the live directory aside (never delete it), recover, verify,
// and roll back to the moved-aside directory if anything after the swap fails. These activities
// run on the database host's own queue. Every one is safe to repeat: each checks what is done.
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Context } from '@temporalio/activity';
import { execa } from 'execa';
import type { Readable } from 'node:stream';
import type { ClusterConfig, Config } from '../config/index.js';
import { ErrorType, nonRetryable, retryable } from '../lib/errors.js';
import { describeTarget, planRecoveryPath, type RecoveryTarget } from '../lib/recovery.js';
import { HISTORY_NAME, parseHistory, parseSegmentName, type TimelineSwitch } from '../lib/wal.js';
import { openKeyring } from './gpg.js';
import { feedFile, writeFileAtomic } from './pipeline.js';
import * as postgres from './postgres.js';
import { startChain, startTool, TOOL_ENV } from './processes.js';
import { LocalRepository } from './repository.js';
import { markInUse } from './retention.js';
import { decodeWal, decodeWalBatch, openWalDecryption, WalArchive } from './walArchive.js';
import { hostname, tmpdir } from 'node:os';
import { freePortOnLoopback } from './ports.js';

export type RecoveryMode = 'in-place' | 'rehearsal';

const RECOVERY_BLOCK_HEADER = '\n# pgwarden point-in-time recovery\n';
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
  async function planRecovery(input: { cluster: string; target: RecoveryTarget; mode: RecoveryMode; runId: string; now?: string }): Promise<RecoveryPlan> {
    if (input.mode !== 'in-place' && input.mode !== 'rehearsal') throw nonRetryable(ErrorType.InvalidInput, `mode must be "in-place" or "rehearsal", not "${String(input.mode)}"`);
    const cluster = clusterRef(input.cluster);
    const dataDirectory = dataDirectoryOf(input.cluster);
    const repo = LocalRepository.forCluster(config, input.cluster);
    const archive = WalArchive.forCluster(config, input.cluster);
    const backups = await repo.listBaseBackups(input.cluster);
    const records = await archive.list();
    const histories = new Map<number, TimelineSwitch[]>();
    const decryption = [...records.keys()].some((n) => HISTORY_NAME.test(n)) ? await openWalDecryption(config, env) : undefined;
    try {
      for (const name of records.keys()) {
        const m = HISTORY_NAME.exec(name);
        if (m) histories.set(parseInt(m[1]!, 16), parseHistory((await decodeWal(archive, name, decryption))!.toString('utf8')));
      }
    } finally {
      await decryption?.keyring.remove();
    }
    const path = planRecoveryPath({
      target: input.target,
      backups,
      wal: [...records.values()].map((r) => ({ name: r.name, archivedAt: r.archivedAt })),
      histories,
      now: input.now ? new Date(input.now) : new Date(),
    });
    if ('name' in input.target) await findRestorePoint(input.cluster, input.target.name, path.walFiles, path.backup.backupId);
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
      walFiles: [...path.walFiles, ...path.followingWalFiles],
      dataDirectory,
      workDirectory,
      asideDirectory: `${dataDirectory}.pre-pitr-${id}`,
      hostQueue: cluster.config.hostQueue ?? `pgwarden@${loopback ? (config.worker.host ?? hostname()) : cluster.config.host}`,
    };
  }

  /**
   * A restore point exists only as a WAL record: pg_waldump reads the archived WAL from the base
   * backup on (decoded into a scratch directory) for `RESTORE_POINT <name>`.
   */
  async function findRestorePoint(clusterName: string, name: string, walFiles: string[], backupId: string): Promise<void> {
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
        if (r.stdout.split('\n').some((l) => l.includes(`RESTORE_POINT ${name}`) && l.trimEnd().endsWith(`RESTORE_POINT ${name}`))) return;
      }
      throw nonRetryable(ErrorType.BadTarget, `restore point "${name}" is not in the archived WAL after base backup ${backupId}`);
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
  async function stageRecovery(plan: RecoveryPlan): Promise<{ bytes: number; walFiles: number }> {
    const [base, wal] = await Promise.all([stageBaseBackup(plan), stageWal(plan)]);
    return { bytes: base.bytes + wal.bytes, walFiles: wal.walFiles };
  }

  /** The base backup unpacked into `<work>/data`. A retry unpacks again; a done one has its marker. */
  async function stageBaseBackup(plan: RecoveryPlan): Promise<{ bytes: number }> {
    const ctx = Context.current();
    const marker = join(plan.workDirectory, 'BASE-STAGED');
    if (existsSync(marker)) return JSON.parse(await readFile(marker, 'utf8')) as { bytes: number };
    const owner = await stat(plan.dataDirectory).catch(() => {
      throw nonRetryable(ErrorType.InvalidInput, `data directory ${plan.dataDirectory} does not exist on ${hostname()}`);
    });
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
  async function pgCtl(clusterConfig: ClusterConfig, dataDir: string, args: string[], options: { reject?: boolean } = {}) {
    const owner = await stat(dataDir);
    // The server is down often enough here: its major version comes from the data directory.
    const major = Number((await readFile(join(dataDir, 'PG_VERSION'), 'utf8').catch(() => '0')).trim());
    const tool = postgres.pgTool('pg_ctl', clusterConfig, major * 10000);
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
    if (!existsSync(dataDir)) return false;
    const r = await pgCtl(clusterConfig, dataDir, ['status'], { reject: false });
    return r.exitCode === 0;
  }

  /** The stop step: pre-stop hook, then a clean (fast) shutdown, confirmed. Stopped already is fine. */
  async function stopCluster(plan: RecoveryPlan): Promise<string> {
    const hook = clusterRef(plan.cluster).config.hooks.preRestore;
    if (hook) await runHook(plan, hook, 'preRestore');
    if (!(await isRunning(cc(plan), plan.dataDirectory))) return 'not running';
    const r = await pgCtl(cc(plan), plan.dataDirectory, ['stop', '-m', 'fast', '-w', '-t', '600'], { reject: false });
    if (r.exitCode !== 0 || (await isRunning(cc(plan), plan.dataDirectory))) {
      throw retryable(ErrorType.ClusterControlFailed, `pg_ctl stop of ${plan.dataDirectory} failed: ${r.stderr || r.stdout}`);
    }
    return 'stopped';
  }

  /** The swap step: the live data directory moves aside (kept), the staged one takes its place. */
  async function swapDataDirectory(plan: RecoveryPlan): Promise<void> {
    const staged = join(plan.workDirectory, 'data');
    if (!existsSync(plan.asideDirectory)) {
      if (await isRunning(cc(plan), plan.dataDirectory)) throw nonRetryable(ErrorType.ClusterControlFailed, `refusing to move ${plan.dataDirectory}: the server is running`);
      await rename(plan.dataDirectory, plan.asideDirectory);
    }
    if (existsSync(staged)) await rename(staged, plan.dataDirectory);
    if (!existsSync(plan.dataDirectory)) throw nonRetryable(ErrorType.RecoveryFailed, `neither the staged data directory nor ${plan.dataDirectory} exists`);
  }

  /** The data directory recovery runs in: the live path (in-place) or the staged copy (rehearsal). */
  const recoveryDir = (plan: RecoveryPlan) => (plan.mode === 'in-place' ? plan.dataDirectory : join(plan.workDirectory, 'data'));

  /**
   * The recover step: recovery settings for PostgreSQL 12+ (recovery.signal, never recovery.conf),
   * start, follow replay until promoted. After a worker crash it picks up the running server.
   */
  async function recover(plan: RecoveryPlan): Promise<RecoveryOutcome> {
    const ctx = Context.current();
    const started = Date.now();
    const dataDir = recoveryDir(plan);
    const logFile = join(plan.workDirectory, 'recovery.log');
    const settingsMarker = join(plan.workDirectory, 'SETTINGS');
    let port = clusterRef(plan.cluster).config.port;
    if (!existsSync(settingsMarker)) {
      if (plan.mode === 'rehearsal') port = await freePortOnLoopback();
      const walDir = join(plan.workDirectory, 'wal');
      const settings: Record<string, string> = {
        restore_command: stagedRestoreCommand(walDir),
        recovery_target_timeline: 'latest',
        recovery_target_action: 'promote',
      };
      const t = plan.target;
      if ('time' in t) settings.recovery_target_time = t.time;
      else if ('lsn' in t) settings.recovery_target_lsn = t.lsn;
      else if ('name' in t) settings.recovery_target_name = t.name;
      if (plan.mode === 'rehearsal') {
        // A drill never reaches the live cluster's archive or port.
        Object.assign(settings, { port: String(port), listen_addresses: '127.0.0.1', unix_socket_directories: plan.workDirectory, archive_mode: 'off' });
      }
      const owner = await stat(dataDir);
      await writeRecoverySettings(dataDir, settings, owner);
      await writeFile(join(dataDir, 'recovery.signal'), '');
      await chown(join(dataDir, 'recovery.signal'), owner.uid, owner.gid);
      // Atomic: a worker killed here must leave either no marker (settings written again) or a whole one.
      await writeFileAtomic(settingsMarker, JSON.stringify({ port }));
    } else {
      port = (JSON.parse(await readFile(settingsMarker, 'utf8')) as { port: number }).port;
    }
    let startedAt = 0;
    if (!(await isRunning(cc(plan), dataDir))) {
      // -W: replay can take hours; this loop follows it and heartbeats instead of pg_ctl waiting.
      const r = await pgCtl(cc(plan), dataDir, ['start', '-l', logFile, '-W'], { reject: false });
      if (r.exitCode !== 0) throw nonRetryable(ErrorType.RecoveryFailed, `pg_ctl start failed: ${r.stderr || r.stdout}`);
      startedAt = Date.now();
    }
    const cluster = clusterRef(plan.cluster);
    const host = plan.mode === 'rehearsal' ? '127.0.0.1' : cluster.config.host;
    for (;;) {
      if (ctx.cancellationSignal.aborted) throw new Error('cancelled');
      const state = await probe(cluster, host, port).catch(() => undefined);
      if (state && !state.inRecovery) {
        return {
          timeline: state.timeline,
          reachedLsn: state.lsn,
          stoppedAt: await recoveryStopLine(logFile),
          port,
          recoverSeconds: (Date.now() - started) / 1000,
        };
      }
      ctx.heartbeat({ phase: 'replay', lsn: state?.lsn });
      // A server that just started may not have written postmaster.pid yet.
      if (!state && Date.now() - startedAt > 5000 && !(await isRunning(cc(plan), dataDir))) {
        throw nonRetryable(ErrorType.RecoveryFailed, `the server stopped during recovery (log ${logFile}): ${await logTail(logFile)}`);
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
      const hook = cluster.config.hooks.postRestore;
      if (hook) await runHook(plan, hook, 'postRestore');
    }
    return { checks };
  }

  /** Removes the working directory (staged copy, decoded WAL); in rehearsal mode, stops the scratch server first. */
  async function cleanupRecovery(plan: RecoveryPlan): Promise<void> {
    const scratch = join(plan.workDirectory, 'data');
    if (existsSync(join(scratch, 'postmaster.pid'))) await pgCtl(cc(plan), scratch, ['stop', '-m', 'immediate', '-w'], { reject: false });
    await rm(plan.workDirectory, { recursive: true, force: true });
  }

  /**
   * After a failure past the swap: stop whatever runs in the data directory, keep it as
   * `<data>.failed-pitr-<id>` for a post-mortem, move the original back and start it.
   */
  async function rollbackRecovery(plan: RecoveryPlan & { reason: string }): Promise<string> {
    if (!existsSync(plan.asideDirectory)) {
      // The swap never happened: the live directory is where it was. Make sure it runs.
      if (!(await isRunning(cc(plan), plan.dataDirectory))) await pgCtl(cc(plan), plan.dataDirectory, ['start', '-w', '-t', '600', '-l', join(plan.workDirectory, 'rollback.log')]);
      // Also where an attempt that moved the original back died (worker killed) before or in the
      // hook: the applications stopped by `stop` are started again all the same.
      const hook = clusterRef(plan.cluster).config.hooks.postRestore;
      if (hook) await runHook(plan, hook, 'postRestore');
      return 'the original data directory is in place and running';
    }
    if (existsSync(plan.dataDirectory)) {
      if (await isRunning(cc(plan), plan.dataDirectory)) await pgCtl(cc(plan), plan.dataDirectory, ['stop', '-m', 'immediate', '-w'], { reject: false });
      const failed = plan.asideDirectory.replace('.pre-pitr-', '.failed-pitr-');
      await rm(failed, { recursive: true, force: true });
      await rename(plan.dataDirectory, failed);
    }
    await rename(plan.asideDirectory, plan.dataDirectory);
    await mkdir(plan.workDirectory, { recursive: true });
    const owner = await stat(plan.dataDirectory);
    await chown(plan.workDirectory, owner.uid, owner.gid); // pg_ctl writes its log there as the owner
    const r = await pgCtl(cc(plan), plan.dataDirectory, ['start', '-w', '-t', '600', '-l', join(plan.workDirectory, 'rollback.log')], { reject: false });
    if (r.exitCode !== 0) throw retryable(ErrorType.ClusterControlFailed, `rolled back, but the original server did not start: ${r.stderr || r.stdout}`);
    const hook = clusterRef(plan.cluster).config.hooks.postRestore;
    if (hook) await runHook(plan, hook, 'postRestore');
    return `rolled back to the original data directory after: ${plan.reason}`;
  }

  async function runHook(plan: RecoveryPlan, argv: string[], name: string): Promise<void> {
    const [file, ...args] = argv;
    const r = await execa(file!, args, { env: { PATH: TOOL_ENV.PATH!, PGWARDEN_CLUSTER: plan.cluster, PGWARDEN_HOOK: name }, extendEnv: false, reject: false, all: true, timeout: 10 * 60_000 });
    if (r.exitCode !== 0) throw nonRetryable(ErrorType.ClusterControlFailed, `${name} hook ${argv.join(' ')} failed (exit ${r.exitCode}): ${String(r.all ?? '').trim().slice(-500)}`);
  }

  return { planRecovery, stageRecovery, stageBaseBackup, stageWal, abortWalStaging, stopCluster, swapDataDirectory, recover, verifyRecovery, cleanupRecovery, rollbackRecovery };
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

async function recoveryStopLine(logFile: string): Promise<string | undefined> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const lines = text.split('\n').reverse();
  // Where it stopped says the most; else how far the WAL went.
  const line = lines.find((l) => /recovery stopping/.test(l)) ?? lines.find((l) => /last completed transaction|redo done at/.test(l));
  return line?.replace(/^.*?(LOG|FATAL):\s+/, '');
}

async function logTail(logFile: string): Promise<string> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const lines = text.trim().split('\n');
  return (lines.filter((l) => /FATAL|PANIC|ERROR/.test(l)).slice(-3).join(' | ') || lines.slice(-3).join(' | ')).slice(0, 1500);
}

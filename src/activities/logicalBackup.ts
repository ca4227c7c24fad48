// The logical backup of one database: preflight, then one streaming pass
// pg_dump -Fc -Z0 → zstd → OpenPGP → sha256 → repository, with the row counts taken in the dump's
// own snapshot, pg_restore --list reading the dump as it streams by, the cluster's globals beside
// it, and manifest.json written last.
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { execa, type ResultPromise } from 'execa';
import { Transform, type TransformCallback, type Writable } from 'node:stream';
import type { Config } from '../config/index.js';
import { expectedBackupBytes, formatBytes } from '../lib/diskSpace.js';
import { ErrorType, nonRetryable, retryable } from '../lib/errors.js';
import { isBackupId, isSafeName } from '../lib/ids.js';
import { artifactName } from '../lib/layout.js';
import { MANIFEST_FORMAT, totalRows, type Artifact, type LogicalManifest } from '../lib/manifest.js';
import { ByteCounter, loadRecipientKeys, Sha256Stage, storeArtifact, type Compression, type RecipientKeys } from './pipeline.js';
import * as postgres from './postgres.js';
import { LocalRepository } from './repository.js';

export const PGWARDEN_VERSION = '0.1.0';

export interface LogicalBackupInput {
  cluster: string;
  database: string;
  backupId: string;
}

export interface PreflightResult {
  serverVersion: string;
  databaseBytes: number;
  expectedBytes: number;
  freeBytes: number;
  /** Fingerprints of the recipients' keys; empty when backups are not encrypted. */
  recipients: string[];
  /** A committed backup with this id exists already: the backup step will return it. */
  backupExists: boolean;
}

export interface LogicalBackupResult {
  cluster: string;
  database: string;
  backupId: string;
  path: string;
  bytes: number;
  rawBytes: number;
  sha256: string;
  tables: number;
  rows: number;
  encrypted: boolean;
  seconds: number;
  /** The backup was committed by an earlier attempt or run; nothing was dumped again. */
  reused: boolean;
}

export interface BackupProgress {
  phase: 'connect' | 'dump' | 'globals' | 'commit';
  rawBytes: number;
  storedBytes: number;
}

export interface LogicalBackupDeps {
  config: Config;
  env: NodeJS.ProcessEnv;
}

function clusterRef(config: Config, name: string): postgres.ClusterRef {
  const cluster = config.clusters[name];
  if (!cluster) {
    const known = Object.keys(config.clusters).join(', ') || 'none';
    throw nonRetryable(ErrorType.UnknownCluster, `unknown cluster "${name}" (configured: ${known})`);
  }
  return { name, config: cluster };
}

function checkInput(input: LogicalBackupInput): void {
  if (!isSafeName(input.database)) {
    throw nonRetryable(ErrorType.InvalidInput, `database name "${input.database}" cannot be used as a repository path component`);
  }
  if (!isBackupId(input.backupId)) {
    throw nonRetryable(ErrorType.InvalidInput, `backupId "${input.backupId}" is not of the form 20261122T020000Z[-suffix]`);
  }
}

async function recipientsFor(config: Config): Promise<RecipientKeys | undefined> {
  return config.encryption ? loadRecipientKeys(config.encryption.recipients) : undefined;
}

export function createLogicalBackupActivities({ config, env }: LogicalBackupDeps) {
  const compression: Compression = config.compression;

  /** Every reason a backup cannot succeed, found before anything is written. */
  async function preflightLogicalBackup(input: LogicalBackupInput): Promise<PreflightResult> {
    const cluster = clusterRef(config, input.cluster);
    checkInput(input);
    const repo = LocalRepository.forCluster(config, input.cluster);
    const recipients = await recipientsFor(config);
    const { serverVersion, databaseBytes } = await postgres.withConnection(cluster, cluster.config.maintenanceDatabase, env, async (client) => {
      const info = await postgres.serverInfo(client);
      const { rows } = await client.query<{ size: string | null }>(
        `SELECT pg_database_size(datname) AS size FROM pg_database WHERE datname = $1 AND datallowconn AND NOT datistemplate`,
        [input.database],
      );
      if (rows.length === 0) {
        throw nonRetryable(ErrorType.UnknownDatabase, `cluster "${input.cluster}" has no database "${input.database}" that can be backed up`);
      }
      return { serverVersion: info.version, databaseBytes: Number(rows[0]!.size) };
    });
    await repo.assertWritable();
    const existing = await repo.readManifest(repo.logicalBackupDir(input.cluster, input.database, input.backupId));
    const previous = (await repo.listLogicalBackups(input.cluster, input.database)).at(-1);
    const expectedBytes = expectedBackupBytes(databaseBytes, previous?.bytes);
    const freeBytes = await repo.freeBytes();
    if (!existing && freeBytes < expectedBytes) {
      throw nonRetryable(
        ErrorType.InsufficientDiskSpace,
        `repository "${repo.name}" at ${repo.root} has ${formatBytes(freeBytes)} free; the backup of "${input.database}" needs about ${formatBytes(expectedBytes)}`,
      );
    }
    return { serverVersion, databaseBytes, expectedBytes, freeBytes, recipients: recipients?.fingerprints ?? [], backupExists: !!existing };
  }

  async function listClusterDatabases(input: { cluster: string }): Promise<string[]> {
    const cluster = clusterRef(config, input.cluster);
    return postgres.withConnection(cluster, cluster.config.maintenanceDatabase, env, postgres.listDatabases);
  }

  /**
   * Dumps, stores and commits one backup. Safe to run again: a committed backup is returned as it
   * is; anything else in its directory is an interrupted attempt and is removed first.
   */
  async function createLogicalBackup(input: LogicalBackupInput): Promise<LogicalBackupResult> {
    const ctx = Context.current();
    const started = Date.now();
    const cluster = clusterRef(config, input.cluster);
    checkInput(input);
    const repo = LocalRepository.forCluster(config, input.cluster);
    const dir = repo.logicalBackupDir(input.cluster, input.database, input.backupId);

    const existing = await repo.readManifest(dir);
    if (existing) return summarize(existing, dir, started, true);

    const recipients = await recipientsFor(config);
    const raw = new ByteCounter();
    const stored = new Sha256Stage();
    let phase: BackupProgress['phase'] = 'connect';
    const beat = () => ctx.heartbeat({ phase, rawBytes: raw.bytes, storedBytes: stored.bytes } satisfies BackupProgress);
    const timer = setInterval(beat, 2000);
    beat();

    await repo.prepareDir(dir);
    try {
      const startedAt = new Date().toISOString();
      const client = await postgres.connect(cluster, input.database, env);
      let dump: Awaited<ReturnType<typeof dumpInSnapshot>>;
      let info: postgres.ServerInfo;
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        info = await postgres.serverInfo(client);
        const { rows } = await client.query<{ s: string }>('SELECT pg_export_snapshot() AS s');
        phase = 'dump';
        const dumpName = artifactName('dump.pgdump', compression.algorithm, !!recipients);
        dump = await dumpInSnapshot({
          client,
          snapshot: rows[0]!.s,
          path: join(dir, dumpName),
          name: dumpName,
          tool: (name) => postgres.pgTool(name, cluster.config, info.versionNum),
          env: postgres.libpqEnv(cluster, input.database, env),
          options: { compression, recipients, signal: ctx.cancellationSignal, maxRate: config.limits.maxRate, counters: { raw, stored } },
        });
        await client.query('COMMIT');
      } finally {
        await client.end().catch(() => undefined);
      }

      phase = 'globals';
      const globals = await dumpGlobals({
        path: join(dir, artifactName('globals.sql', compression.algorithm, !!recipients)),
        tool: postgres.pgTool('pg_dumpall', cluster.config, info.versionNum),
        env: postgres.libpqEnv(cluster, cluster.config.maintenanceDatabase, env),
        options: { compression, recipients, signal: ctx.cancellationSignal },
      });

      phase = 'commit';
      const manifest: LogicalManifest = {
        format: MANIFEST_FORMAT,
        kind: 'logical',
        cluster: input.cluster,
        database: input.database,
        backupId: input.backupId,
        serverVersion: info.version,
        serverVersionNum: info.versionNum,
        startedAt,
        finishedAt: new Date().toISOString(),
        bytes: dump.artifact.bytes + globals.artifact.bytes,
        sha256: dump.artifact.sha256,
        artifacts: [dump.artifact, globals.artifact],
        compression: compression.algorithm === 'zstd' ? { algorithm: 'zstd', level: compression.level } : { algorithm: 'none' },
        encryption: recipients ? { format: 'openpgp', recipients: recipients.fingerprints } : null,
        dumpFormat: 'custom',
        tocEntries: dump.tocEntries,
        globals: { rolePasswords: globals.rolePasswords },
        tables: dump.tables,
        verifications: [],
        pgwardenVersion: PGWARDEN_VERSION,
      };
      await repo.commit(dir, manifest);
      return summarize(manifest, dir, started, false);
    } catch (err) {
      // Clean our own partial output; the retry (or the operator) starts from a clean directory.
      await repo.removeDir(dir).catch(() => undefined);
      if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? err;
      throw err;
    } finally {
      clearInterval(timer);
    }
  }

  return { preflightLogicalBackup, listClusterDatabases, createLogicalBackup };
}

function summarize(m: LogicalManifest, path: string, started: number, reused: boolean): LogicalBackupResult {
  const dump = m.artifacts.find((a) => a.role === 'dump');
  return {
    cluster: m.cluster,
    database: m.database,
    backupId: m.backupId,
    path,
    bytes: m.bytes,
    rawBytes: dump?.rawBytes ?? 0,
    sha256: m.sha256,
    tables: m.tables.length,
    rows: totalRows(m.tables),
    encrypted: m.encryption !== null,
    seconds: (Date.now() - started) / 1000,
    reused,
  };
}

interface DumpArgs {
  client: import('pg').Client;
  snapshot: string;
  path: string;
  name: string;
  tool: (name: string) => string;
  env: Record<string, string>;
  options: Parameters<typeof storeArtifact>[2];
}

async function dumpInSnapshot(args: DumpArgs) {
  const { signal } = args.options;
  const common = { env: args.env, extendEnv: false, cancelSignal: signal, forceKillAfterDelay: 5000, stderr: 'pipe', maxBuffer: { stderr: 1024 * 1024 } } as const;
  const pgDump = execa(args.tool('pg_dump'), ['--format=custom', '--compress=0', `--snapshot=${args.snapshot}`, '--no-password'], {
    ...common,
    stdin: 'ignore',
    buffer: { stdout: false },
  });
  const pgRestore = execa(args.tool('pg_restore'), ['--list'], { ...common, stdin: 'pipe', stdout: 'pipe', maxBuffer: { stdout: 256 * 1024 * 1024 } });
  const toc = new FeedWhileOpen(pgRestore.stdin);

  const tablesPromise = postgres.listTables(args.client).then((tables) => postgres.countRows(args.client, tables));
  const storePromise = storeArtifact(pgDump.stdout.pipe(toc), args.path, args.options);
  // pg_dump failing is the root cause whenever it fails: report that, not the broken pipe.
  const [dumpResult, stored] = await Promise.allSettled([settle(pgDump), storePromise]);
  if (dumpResult.status === 'rejected') throw describeToolFailure('pg_dump', dumpResult.reason);
  if (stored.status === 'rejected') {
    pgRestore.kill();
    throw stored.reason;
  }
  const restoreResult = await settle(pgRestore).catch((err: unknown) => {
    throw nonRetryable(ErrorType.SanityCheckFailed, `pg_restore --list cannot read the dump: ${toolMessage(err)}`);
  });
  const listing = String(restoreResult.stdout);
  // An empty database has no entries, but every readable archive has its header.
  if (!/^; Archive created at /m.test(listing)) {
    throw nonRetryable(ErrorType.SanityCheckFailed, 'pg_restore --list did not read an archive header from the dump');
  }
  const tocEntries = listing.split('\n').filter((l) => l.trim() !== '' && !l.startsWith(';')).length;
  const tables = await tablesPromise;
  const artifact: Artifact = { name: args.name, role: 'dump', ...stored.value };
  return { artifact, tocEntries, tables };
}

async function dumpGlobals(args: { path: string; tool: string; env: Record<string, string>; options: Parameters<typeof storeArtifact>[2] }) {
  const name = args.path.slice(args.path.lastIndexOf('/') + 1);
  const run = async (extra: string[]) => {
    const p = execa(args.tool, ['--globals-only', '--no-password', `--database=${args.env.PGDATABASE}`, ...extra], {
      env: args.env,
      extendEnv: false,
      cancelSignal: args.options.signal,
      stdin: 'ignore',
      buffer: { stdout: false },
      maxBuffer: { stderr: 1024 * 1024 },
    });
    const [result, stored] = await Promise.allSettled([settle(p), storeArtifact(p.stdout, args.path, args.options)]);
    if (result.status === 'rejected') throw result.reason;
    if (stored.status === 'rejected') throw stored.reason;
    return stored.value;
  };
  try {
    return { artifact: { name, role: 'globals', ...(await run([])) } satisfies Artifact, rolePasswords: true };
  } catch (err) {
    // Role passwords live in pg_authid, readable by superusers only; the rest is still worth keeping.
    if (!/permission denied/.test(toolMessage(err))) throw describeToolFailure('pg_dumpall', err);
    await import('node:fs/promises').then((fs) => fs.rm(args.path + '.partial', { force: true }));
    const artifact = await run(['--no-role-passwords']).catch((e: unknown) => {
      throw describeToolFailure('pg_dumpall', e);
    });
    return { artifact: { name, role: 'globals', ...artifact } satisfies Artifact, rolePasswords: false };
  }
}

async function settle<T>(p: ResultPromise & Promise<T>): Promise<T> {
  return p;
}

function toolMessage(err: unknown): string {
  const e = err as { stderr?: unknown; shortMessage?: string; message?: string };
  const stderr = typeof e.stderr === 'string' ? e.stderr.trim().split('\n').slice(-5).join(' | ') : '';
  return stderr || e.shortMessage || e.message || String(err);
}

function describeToolFailure(tool: string, err: unknown): Error {
  const e = err as { isCanceled?: boolean };
  if (e.isCanceled) return err as Error;
  const message = toolMessage(err);
  // Permission problems do not go away by retrying; a dropped connection might.
  if (/permission denied|must be (superuser|owner)/i.test(message)) {
    return nonRetryable(ErrorType.DumpFailed, `${tool} failed: ${message}`);
  }
  return retryable(ErrorType.DumpFailed, `${tool} failed: ${message}`);
}

/**
 * Passes every chunk on, and also feeds it to `target` (pg_restore --list) for as long as that
 * process reads: it stops reading after the table of contents. Backpressure from the target is
 * respected, so a slow reader cannot make memory grow.
 */
class FeedWhileOpen extends Transform {
  private open = true;
  constructor(private readonly target: Writable) {
    super();
    const close = () => {
      this.open = false;
      this.target.emit('pgwarden-closed');
    };
    target.on('error', close);
    target.on('close', close);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (!this.open || this.target.write(chunk)) return done(null, chunk);
    const resume = () => {
      this.target.off('drain', resume);
      this.target.off('pgwarden-closed', resume);
      done(null, chunk);
    };
    this.target.on('drain', resume);
    this.target.on('pgwarden-closed', resume);
  }
  override _flush(done: TransformCallback): void {
    if (this.open) this.target.end();
    done();
  }
}


// The physical base backup of a cluster: the checks before it, the chain that stores it
// (postgres/baseStream.ts: pg_basebackup | zstd → gpg, sha256, the repository), its manifest.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import type { Config } from '../config/index.js';
import { ErrorType, nonRetryable } from '../lib/errors.js';
import { backupIdProblem } from '../lib/ids.js';
import { artifactName } from '../lib/layout.js';
import { MANIFEST_FORMAT, type Artifact, type BackupSourceRecord, type BaseManifest } from '../lib/manifest.js';
import { startBaseStream } from '../postgres/baseStream.js';
import { PGWARDEN_VERSION } from './logicalBackup.js';
import { loadRecipientKeys, Sha256Stage } from '../stream/pipeline.js';
import { writeFileAtomic } from '../host/atomicFile.js';
import * as postgres from '../postgres/connection.js';
import { openRepository } from '../storage/clusterRepository.js';
import { pickBackupSource, sourceRef } from './backupSource.js';
import { archiveStopSegment, checkStandbySource, switchWhileStandbyWaits } from './baseFromStandby.js';

export interface BaseBackupInput {
  cluster: string;
  backupId: string;
  /** Where to take it from, as preflight chose it (clusters with standbys); absent: the primary. */
  source?: BackupSourceRecord;
}

export interface BaseBackupResult {
  cluster: string;
  backupId: string;
  path: string;
  bytes: number;
  timeline: number;
  startLsn: string;
  stopLsn: string;
  seconds: number;
  reused: boolean;
  source?: BackupSourceRecord;
}

export interface BasePreflight {
  serverVersion: string;
  systemIdentifier: string;
  clusterBytes: number;
  freeBytes: number;
  /** Clusters with standbys: where this run's base backup comes from. */
  source?: BackupSourceRecord;
}

export function createBaseBackupActivities({ config, env }: { config: Config; env: NodeJS.ProcessEnv }) {
  /** Reachable, archiving on (a base backup without its WAL restores nothing), room in the repository. */
  async function checkPrimary(input: BaseBackupInput): Promise<BasePreflight> {
    const problem = backupIdProblem(input.backupId);
    if (problem) throw nonRetryable(ErrorType.InvalidInput, problem);
    const cluster = postgres.clusterRef(config, input.cluster);
    const repo = openRepository(config, input.cluster);
    await repo.assertWritable();
    return postgres.withConnection(cluster, cluster.config.maintenanceDatabase, env, async (client) => {
      const { rows } = await client.query<{ name: string; setting: string }>(
        `SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', 'archive_mode', 'archive_command', 'wal_segment_size')`,
      );
      const s = Object.fromEntries(rows.map((r) => [r.name, r.setting]));
      if (s.wal_level === 'minimal' || s.archive_mode === 'off' || !s.archive_command) {
        throw nonRetryable(
          ErrorType.ArchivingOff,
          `cluster "${input.cluster}" does not archive WAL (wal_level=${s.wal_level}, archive_mode=${s.archive_mode}); a base backup needs it: see \`pgwarden cluster archiving --cluster ${input.cluster}\``,
        );
      }
      if (Number(s.wal_segment_size) !== 16 * 1024 * 1024)
        throw nonRetryable(
          ErrorType.InvalidInput,
          `cluster "${input.cluster}" uses WAL segments of ${s.wal_segment_size} bytes; pgwarden supports 16 MiB`,
        );
      const info = await postgres.serverInfo(client);
      const {
        rows: [ids],
      } = await client.query<{ id: string; bytes: string }>(
        `SELECT system_identifier::text AS id, (SELECT sum(pg_database_size(oid)) FROM pg_database)::text AS bytes FROM pg_control_system()`,
      );
      const clusterBytes = Number(ids!.bytes);
      const freeBytes = await repo.freeBytes();
      // Compressed, a cluster takes about half its size; demand that plus a margin.
      if (freeBytes < clusterBytes * 0.6) {
        throw nonRetryable(
          ErrorType.InsufficientDiskSpace,
          `repository "${repo.name}" has ${freeBytes} bytes free; a base backup of ${clusterBytes} bytes needs about ${Math.round(clusterBytes * 0.6)}`,
        );
      }
      return { serverVersion: info.version, systemIdentifier: ids!.id, clusterBytes, freeBytes };
    });
  }

  /** The primary's checks, then (clusters with standbys) where this run takes its base backup from. */
  async function preflightBaseBackup(input: BaseBackupInput): Promise<BasePreflight> {
    const pre = await checkPrimary(input);
    const source = await pickBackupSource(config, env, input.cluster);
    return { ...pre, ...(source && { source }) };
  }

  async function createBaseBackup(input: BaseBackupInput): Promise<BaseBackupResult> {
    const ctx = Context.current();
    const started = Date.now();
    const cluster = postgres.clusterRef(config, input.cluster);
    const repo = openRepository(config, input.cluster);
    const dir = repo.base(input.backupId);
    const done = await repo.readBaseManifest(dir);
    if (done) return resultOf(done, dir, started, true);
    await repo.prepareDir(dir); // a retry starts clean: an earlier attempt's partial files go

    const pre = await checkPrimary(input);
    const info = await postgres.withConnection(cluster, cluster.config.maintenanceDatabase, env, (c) =>
      postgres.serverInfo(c),
    );
    const recipients = config.encryption ? await loadRecipientKeys(config.encryption.recipients) : undefined;
    const compression = config.compression;
    const name = artifactName('base.tar', compression.algorithm, !!recipients);
    const startedAt = new Date().toISOString();
    const signal = ctx.cancellationSignal;
    const from = sourceRef(config, input.cluster, input.source);
    if (input.source?.role === 'standby') await checkStandbySource(from, env, pre.systemIdentifier);

    // --wal-method=none: the WAL comes from the archive, and pg_basebackup waits until the backup's
    // last segment is archived (on a standby only with archive_mode = always, and then only once the
    // primary switched: switchWhileStandbyWaits; otherwise archiveStopSegment below). Tar to stdout
    // carries PostgreSQL's backup_manifest inside.
    const fromStandby = input.source?.role === 'standby';
    // From a standby, the backup's WAL sender is found there by this name (switchWhileStandbyWaits).
    const appName = `pgwarden base ${input.backupId}`;
    const toolEnv = postgres.libpqEnv(from, from.config.maintenanceDatabase, env);
    const stored = new Sha256Stage();
    const chain = startBaseStream({
      command: postgres.pgTool('pg_basebackup', from.config, info.versionNum),
      args: [
        '--pgdata=-',
        '--format=tar',
        '--wal-method=none',
        '--checkpoint=fast',
        '--no-password',
        `--label=pgwarden ${input.backupId}`,
        '--manifest-checksums=SHA256',
      ],
      env: { ...toolEnv, ...(fromStandby && { PGAPPNAME: appName }) },
      compression,
      recipients,
      path: join(dir, name),
      signal,
      maxRate: config.limits.maxRate,
      stored,
    });
    const timer = setInterval(() => ctx.heartbeat({ phase: 'base', storedBytes: stored.bytes }), 2000);
    let nudgeFailure: Error | undefined;
    const fail = (err: Error) => {
      nudgeFailure ??= err;
      chain.kill();
    };
    const stopNudging = fromStandby
      ? switchWhileStandbyWaits({ config, env, cluster: input.cluster, standby: from, applicationName: appName, fail })
      : () => undefined;
    let artifact: Artifact;
    let backupManifest: string;
    try {
      const { backupManifest: m, ...s } = await chain.result.catch((err: unknown) => {
        throw nudgeFailure ?? err;
      });
      if (nudgeFailure) throw nudgeFailure;
      artifact = { name, role: 'base', ...s };
      backupManifest = m;
    } finally {
      clearInterval(timer);
      stopNudging();
    }

    const range = walRange(backupManifest);
    if (fromStandby) {
      const beat = (waitingFor: string) => ctx.heartbeat({ phase: 'archive', waitingFor, storedBytes: stored.bytes });
      await archiveStopSegment({ config, env, cluster: input.cluster, ...range, beat, signal });
    }
    await writeFileAtomic(join(dir, 'backup_manifest'), backupManifest);
    const manifestArtifact: Artifact = {
      name: 'backup_manifest',
      role: 'backup_manifest',
      bytes: Buffer.byteLength(backupManifest),
      sha256: createHash('sha256').update(backupManifest).digest('hex'),
    };
    const manifest: BaseManifest = {
      format: MANIFEST_FORMAT,
      kind: 'base',
      cluster: input.cluster,
      backupId: input.backupId,
      serverVersion: info.version,
      serverVersionNum: info.versionNum,
      systemIdentifier: pre.systemIdentifier,
      startedAt,
      finishedAt: new Date().toISOString(),
      bytes: artifact.bytes + manifestArtifact.bytes,
      sha256: artifact.sha256,
      artifacts: [artifact, manifestArtifact],
      compression: {
        algorithm: compression.algorithm,
        ...(compression.algorithm === 'zstd' ? { level: compression.level } : {}),
      },
      encryption: recipients ? { format: 'openpgp', recipients: recipients.fingerprints } : null,
      ...range,
      verifications: [],
      pgwardenVersion: PGWARDEN_VERSION,
      ...(input.source && { source: input.source }),
    };
    await repo.commit(dir, manifest);
    return resultOf(manifest, dir, started, false);
  }

  return { preflightBaseBackup, createBaseBackup };
}

function resultOf(m: BaseManifest, dir: string, started: number, reused: boolean): BaseBackupResult {
  return {
    cluster: m.cluster,
    backupId: m.backupId,
    path: dir,
    bytes: m.bytes,
    timeline: m.timeline,
    startLsn: m.startLsn,
    stopLsn: m.stopLsn,
    seconds: (Date.now() - started) / 1000,
    reused,
    ...(m.source && { source: m.source }),
  };
}

/** The WAL range from backup_manifest (one range: the backup did not cross a timeline switch). */
export function walRange(backupManifest: string): { timeline: number; startLsn: string; stopLsn: string } {
  const parsed = JSON.parse(backupManifest) as {
    'WAL-Ranges'?: { Timeline: number; 'Start-LSN': string; 'End-LSN': string }[];
  };
  const ranges = parsed['WAL-Ranges'] ?? [];
  if (ranges.length !== 1)
    throw nonRetryable(ErrorType.SanityCheckFailed, `backup_manifest has ${ranges.length} WAL ranges; expected one`);
  const r = ranges[0]!;
  return { timeline: r.Timeline, startLsn: r['Start-LSN'], stopLsn: r['End-LSN'] };
}

// `pgwarden backups`: what a cluster's repository holds (pgBackRest's `info`): each committed
// backup with its size, when it finished, its last verification and the offsite repositories whose
// check confirmed it, and the WAL archive's extent. Pure: the reader (activities/repositoryInfo.ts)
// hands in the manifests, the WAL records and the offsite confirmation records.
import type { BaseManifest, LogicalManifest } from './manifest.js';
import type { OffsiteConfirmations } from './offsiteConfirmed.js';

export interface BackupInfo {
  backupId: string;
  kind: 'logical' | 'base';
  /** Logical backups only. */
  database?: string;
  /** Stored bytes (compressed, encrypted), all artifacts. */
  bytes: number;
  startedAt: string;
  finishedAt: string;
  encrypted: boolean;
  /** The newest verification run recorded in the manifest, if any. */
  verified?: { at: string; ok: boolean; method: string };
  /** Offsite repositories whose remote check confirmed this backup, with when. */
  offsite: { repository: string; confirmedAt: string }[];
  /** Base backups: the WAL they need, from their start to their consistency point. */
  timeline?: number;
  startLsn?: string;
  stopLsn?: string;
}

export interface WalArchiveInfo {
  /** Committed WAL files (segments, history and backup-label files). */
  files: number;
  bytes: number;
  /** The lowest and highest segment names (history files and `.backup` labels are not segments). */
  firstSegment?: string;
  lastSegment?: string;
  /** Segments confirmed by each offsite repository's check. */
  offsite: { repository: string; files: number }[];
}

export interface RepositoryInfo {
  cluster: string;
  repository: string;
  /** The directory read (on the host that read it). */
  path: string;
  /** Where it was read: `here` (the CLI's host) or the worker's host name. */
  readOn: string;
  /** Oldest first: base backups, then each database's logical backups. */
  backups: BackupInfo[];
  wal: WalArchiveInfo;
  /** The cluster's offsite repositories (from the config). */
  offsiteRepositories: string[];
}

const SEGMENT = /^[0-9A-F]{24}$/;

export function buildRepositoryInfo(input: {
  cluster: string;
  repository: string;
  path: string;
  readOn: string;
  base: readonly BaseManifest[];
  logical: readonly LogicalManifest[];
  wal: readonly { name: string; bytes: number }[];
  offsite: ReadonlyMap<string, OffsiteConfirmations | undefined>;
}): RepositoryInfo {
  const confirmedBy = (group: string) =>
    [...input.offsite].flatMap(([repository, record]) => {
      const at = record?.confirmed[group];
      return at ? [{ repository, confirmedAt: at }] : [];
    });
  const common = (m: BaseManifest | LogicalManifest) => {
    const last = m.verifications.at(-1);
    return {
      backupId: m.backupId,
      bytes: m.bytes,
      startedAt: m.startedAt,
      finishedAt: m.finishedAt,
      encrypted: m.encryption !== null,
      ...(last ? { verified: { at: last.at, ok: last.ok, method: last.method } } : {}),
    };
  };
  const backups: BackupInfo[] = [
    ...[...input.base]
      .sort((a, b) => a.backupId.localeCompare(b.backupId))
      .map((m) => ({
        ...common(m),
        kind: 'base' as const,
        offsite: confirmedBy(`${input.cluster}/base/${m.backupId}`),
        timeline: m.timeline,
        startLsn: m.startLsn,
        stopLsn: m.stopLsn,
      })),
    ...[...input.logical]
      .sort((a, b) => a.database.localeCompare(b.database) || a.backupId.localeCompare(b.backupId))
      .map((m) => ({
        ...common(m),
        kind: 'logical' as const,
        database: m.database,
        offsite: confirmedBy(`${input.cluster}/logical/${m.database}/${m.backupId}`),
      })),
  ];
  const segments = input.wal
    .map((w) => w.name)
    .filter((n) => SEGMENT.test(n))
    .sort();
  const wal: WalArchiveInfo = {
    files: input.wal.length,
    bytes: input.wal.reduce((sum, w) => sum + w.bytes, 0),
    ...(segments.length ? { firstSegment: segments[0], lastSegment: segments.at(-1) } : {}),
    offsite: [...input.offsite].map(([repository, record]) => ({
      repository,
      files: input.wal.filter((w) => record?.confirmed[`${input.cluster}/wal/${w.name}`]).length,
    })),
  };
  return {
    cluster: input.cluster,
    repository: input.repository,
    path: input.path,
    readOn: input.readOn,
    backups,
    wal,
    offsiteRepositories: [...input.offsite.keys()],
  };
}

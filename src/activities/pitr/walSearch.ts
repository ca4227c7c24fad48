// Reading the archived WAL's content with pg_waldump: whether replay reaches a time or LSN target,
// and whether a restore point exists (it exists only as a WAL record).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { execa } from 'execa';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import type { RecoveryTarget } from '../../lib/recovery.js';
import { parseWaldump, reachesTarget } from '../../lib/walContent.js';
import { formatLsn, parseSegmentName } from '../../lib/wal.js';
import * as postgres from '../../postgres/connection.js';
import { openRepository } from '../../storage/clusterRepository.js';
import { openWalDecryption } from '../../storage/walArchive.js';
import { decodeWalBatch } from '../../storage/walDecodeBatch.js';
import { TOOL_ENV } from '../../stream/processes.js';
import { WAL_BATCH, type PitrContext } from './context.js';

export interface WalSearch {
  scanWal(
    clusterName: string,
    target: RecoveryTarget,
    segments: string[],
  ): Promise<{ reached: boolean; reach: string }>;
  findRestorePoint(clusterName: string, name: string, walFiles: string[]): Promise<boolean>;
}

export function walSearch({ config, env, clusterRef }: PitrContext): WalSearch {
  /**
   * Decodes archived segments in order (one at a time, each removed after pg_waldump read it) until
   * one shows that replay reaches a time or LSN target; else says how far the WAL goes.
   */
  async function scanWal(
    clusterName: string,
    target: RecoveryTarget,
    segments: string[],
  ): Promise<{ reached: boolean; reach: string }> {
    const scratch = await mkdtemp(join(tmpdir(), 'pgwarden-waldump-'));
    const archive = openRepository(config, clusterName).wal;
    const decryption = await openWalDecryption(config, env);
    const waldump = postgres.pgTool('pg_waldump', clusterRef(clusterName).config, 150000);
    let last: { segment: string; record?: bigint } | undefined;
    let lastEnd: { segment: string; micros: bigint } | undefined;
    try {
      for (const name of segments) {
        const { missing } = await decodeWalBatch(archive, [name], decryption, scratch);
        if (missing.length) break; // removed since it was listed: the WAL ends before it
        // It stops with an error at the end of the WAL; what it printed before is what counts. Times in UTC.
        const r = await execa(waldump, [join(scratch, name)], {
          reject: false,
          env: { ...TOOL_ENV, TZ: 'UTC' },
          extendEnv: false,
        });
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
    const lastCommit = lastEnd
      ? `its last commit or abort is at ${new Date(Number(lastEnd.micros / 1000n)).toISOString()} (in ${lastEnd.segment})`
      : `no commit or abort after ${segments[0]}`;
    return {
      reached: false,
      reach: `the archived WAL ends at ${last ? `LSN ${formatLsn(last.record!)} (in ${last.segment})` : segments.at(-1)}, ${lastCommit}`,
    };
  }

  /**
   * A restore point exists only as a WAL record: pg_waldump reads the archived WAL from the base
   * backup on (decoded into a scratch directory) for `RESTORE_POINT <name>`.
   */
  async function findRestorePoint(clusterName: string, name: string, walFiles: string[]): Promise<boolean> {
    const scratch = await mkdtemp(join(tmpdir(), 'pgwarden-waldump-'));
    const archive = openRepository(config, clusterName).wal;
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
        if (missing.length)
          throw nonRetryable(ErrorType.WalGap, `WAL file ${missing[0]} left the archive after it was listed`);
        Context.current().heartbeat({ phase: 'find-restore-point', file: batch.at(-1) });
      }
      const waldump = postgres.pgTool('pg_waldump', clusterRef(clusterName).config, 150000);
      for (const [timeline, files] of byTimeline) {
        // It stops with an error at the end of the WAL; what it printed before is what counts.
        const r = await execa(
          waldump,
          ['--path', scratch, '--timeline', String(timeline), '--rmgr', 'XLOG', files[0]!, files.at(-1)!],
          { reject: false, env: TOOL_ENV, extendEnv: false },
        );
        if (
          r.stdout
            .split('\n')
            .some((l) => l.includes(`RESTORE_POINT ${name}`) && l.trimEnd().endsWith(`RESTORE_POINT ${name}`))
        )
          return true;
      }
      return false;
    } finally {
      await decryption?.keyring.remove();
      await rm(scratch, { recursive: true, force: true });
    }
  }

  return { scanWal, findRestorePoint };
}

// createStandby's host steps: the newest base backup laid beside the standby's data directory (PITR's
// staging), swapped in (PITR's swap: a directory that is not empty is moved aside, never deleted),
// configured to stream from the primary and to read the archive through `pgwarden wal-get`, started;
// and the way back when anything after the swap fails.
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StandbyConfig } from '../../config/replication.js';
import { asyncGetSettings } from '../../archive/settings.js';
import { writeFileAtomic } from '../../host/atomicFile.js';
import { defaultConfigPath } from '../../lib/configOverrides.js';
import { ErrorType, nonRetryable } from '../../lib/errors.js';
import { clusterHostQueue } from '../../lib/hostQueue.js';
import { resolvePassword } from '../../postgres/connection.js';
import { openRepository } from '../../storage/clusterRepository.js';
import { EMPTY_ORIGINAL, NO_ORIGINAL, type PitrContext } from '../pitr/context.js';
import { isRunning, pgCtl } from '../pitr/server.js';
import { writeSettingsBlock } from '../pitr/recover.js';
import { prepareLog } from '../pitr/serverLog.js';
import { foundDataDirectory } from '../pitr/stage.js';
import type { StandbyPlan } from './types.js';

const STANDBY_BLOCK_HEADER = '\n# pgwarden standby\n';

/** bin/pgwarden (or bin/pgwarden-wal-get) of this installation (the same relative path from src/activities/standby and dist/activities/standby). */
const pgwardenBinary = (suffix = '') => fileURLToPath(new URL(`../../../bin/pgwarden${suffix}`, import.meta.url));
const shellWord = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
/** A libpq conninfo value, quoted. */
const conninfoValue = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
/** A .pgpass field (`:` and `\` escaped). */
const passfileField = (s: string) => s.replace(/\\/g, '\\\\').replace(/:/g, '\\:');

/** The server's output: beside the data directory, as for a cluster without logFile. */
export const standbyLogOf = (plan: StandbyPlan) => `${plan.dataDirectory}.log`;
/** The replication password, for the standby's server only (0600, its owner's): never in the settings or in history. */
export const standbyPassfileOf = (plan: StandbyPlan) => `${plan.dataDirectory}.pgpass`;
/** In the work directory: this run created the passfile (so a rollback removes it). */
const PASSFILE_CREATED = 'PASSFILE-CREATED';

/** The standby as configured; a name the config does not list fails, naming those it does. */
export function standbyOf({ clusterRef }: PitrContext, cluster: string, name: string): StandbyConfig {
  const list = clusterRef(cluster).config.standbys ?? [];
  const found = list.find((s) => s.name === name);
  if (!found)
    throw nonRetryable(
      ErrorType.InvalidInput,
      `cluster "${cluster}" has no standby "${name}" (configured: ${list.map((s) => s.name).join(', ') || 'none'})`,
    );
  return found;
}

export function createStandbyBuildActivities(ctx: PitrContext) {
  const { config, env, clusterRef, cc } = ctx;
  /** Which standby, where, from which base backup: checked before anything is touched. */
  async function planStandby(input: {
    cluster: string;
    standby: string;
    backupId?: string;
    runId: string;
  }): Promise<StandbyPlan> {
    const primary = clusterRef(input.cluster).config;
    const standby = standbyOf(ctx, input.cluster, input.standby);
    if (!standby.dataDirectory)
      throw nonRetryable(
        ErrorType.InvalidInput,
        `standby "${standby.name}" of cluster "${input.cluster}" has no dataDirectory in the config; createStandby needs it`,
      );
    const dataDirectory = standby.dataDirectory.replace(/\/+$/, '');
    if (dataDirectory === primary.dataDirectory?.replace(/\/+$/, '') && standby.host === primary.host)
      throw nonRetryable(ErrorType.InvalidInput, `standby "${standby.name}" names the primary's own data directory`);
    if (standby.port === primary.port && standby.host === primary.host)
      throw nonRetryable(
        ErrorType.InvalidInput,
        `standby "${standby.name}" has the primary's address, ${standby.host}:${standby.port}: give it its own port`,
      );
    const backups = (await openRepository(config, input.cluster).baseBackups()).filter(
      (b) => input.backupId === undefined || b.backupId === input.backupId,
    );
    const newest = backups.sort((a, b) => (a.backupId < b.backupId ? -1 : 1)).at(-1);
    if (!newest)
      throw nonRetryable(
        ErrorType.NoBackup,
        input.backupId
          ? `cluster "${input.cluster}" has no base backup ${input.backupId}`
          : `cluster "${input.cluster}" has no base backup yet: run baseBackup first`,
      );
    const id = input.runId.replace(/-/g, '').slice(-12);
    return {
      cluster: input.cluster,
      standby: standby.name,
      backupId: newest.backupId,
      dataDirectory,
      workDirectory: `${dataDirectory}.pgwarden-standby-${id}`,
      asideDirectory: `${dataDirectory}.pre-standby-${id}`,
      port: standby.port,
      hostQueue: clusterHostQueue(standby, config.worker.host ?? hostname()),
    };
  }

  /** Refuses a data directory a server runs in (it is stopped by its operator, not by pgwarden); says what is there. */
  async function checkStandbyTarget(plan: StandbyPlan): Promise<{ dataDirectory: 'present' | 'missing' | 'empty' }> {
    if (existsSync(plan.asideDirectory)) return { dataDirectory: 'present' }; // a retry after the swap
    if (await isRunning(cc(plan), plan.dataDirectory))
      throw nonRetryable(
        ErrorType.ClusterControlFailed,
        `a server runs in ${plan.dataDirectory}: stop it first (createStandby never stops a running server)`,
      );
    return { dataDirectory: await foundDataDirectory(plan) };
  }

  /**
   * The settings that make the laid base backup a streaming standby, at the end of
   * postgresql.auto.conf (later lines win; a retry replaces its own block), `standby.signal`, the
   * passfile; then the server started. Started already (a retry) is fine.
   */
  async function startStandby(plan: StandbyPlan): Promise<{ port: number; log: string }> {
    const dataDir = plan.dataDirectory;
    const owner = await stat(dataDir);
    const primary = clusterRef(plan.cluster);
    const c = primary.config;
    const password = resolvePassword(primary, c.maintenanceDatabase, env);
    const passfile = standbyPassfileOf(plan);
    const conninfo: Record<string, string> = {
      host: c.host,
      port: String(c.port),
      user: c.user,
      application_name: plan.standby,
      ...(c.sslmode ? { sslmode: c.sslmode } : {}),
      ...(password !== undefined ? { passfile } : {}),
    };
    if (password !== undefined) {
      // A passfile this run creates is removed by a rollback; one already there (a standby rebuilt over
      // its earlier self) stays, since the directory the rollback brings back needs it. Recorded before
      // the write, so a retry, which finds the file, still knows.
      const created = join(plan.workDirectory, PASSFILE_CREATED);
      if (!existsSync(passfile) && !existsSync(created)) await writeFile(created, '');
      const line = [c.host, String(c.port), '*', c.user, password].map(passfileField).join(':');
      await writeFileAtomic(passfile, `${line}\n`);
      await chown(passfile, owner.uid, owner.gid);
    }
    const configFile = defaultConfigPath(env);
    // With walGet.async, bin/pgwarden-wal-get serves what the fetcher spooled without starting Node.
    const spool = asyncGetSettings(config.walGet, plan.cluster, owner.uid)?.spoolDirectory;
    const walGet = spool
      ? [pgwardenBinary('-wal-get'), '--config', configFile, '--cluster', plan.cluster, '--spool', spool]
      : [pgwardenBinary(), '--config', configFile, 'wal-get', '--cluster', plan.cluster];
    const settings: Record<string, string> = {
      port: String(plan.port),
      primary_conninfo: Object.entries(conninfo)
        .map(([k, v]) => `${k}=${conninfoValue(v)}`)
        .join(' '),
      restore_command: `${walGet.map(shellWord).join(' ')} %f %p`,
      recovery_target_timeline: 'latest',
      hot_standby: 'on',
    };
    await writeSettingsBlock(dataDir, STANDBY_BLOCK_HEADER, settings, owner);
    await writeFile(join(dataDir, 'standby.signal'), '');
    await chown(join(dataDir, 'standby.signal'), owner.uid, owner.gid);
    const log = standbyLogOf(plan);
    if (!(await isRunning(cc(plan), dataDir))) {
      await prepareLog(log, owner);
      // -W: catching up from the archive can take long; waitForStreaming follows it, heartbeating.
      const r = await pgCtl(cc(plan), dataDir, ['start', '-l', log, '-W'], { reject: false });
      if (r.exitCode !== 0)
        throw nonRetryable(ErrorType.RecoveryFailed, `pg_ctl start failed (log ${log}): ${r.stderr || r.stdout}`);
    }
    return { port: plan.port, log };
  }

  /**
   * After a failure past the swap: the server in the data directory stopped, the failed standby kept as
   * `<data>.failed-standby-<id>`, and the data directory as found: the moved-aside one back, or
   * missing or empty again. Safe to repeat.
   */
  async function rollbackStandby(plan: StandbyPlan & { reason: string }): Promise<string> {
    const failed = plan.asideDirectory.replace('.pre-standby-', '.failed-standby-');
    const emptyOriginal = join(plan.workDirectory, EMPTY_ORIGINAL);
    const original = existsSync(plan.asideDirectory);
    const nothing = existsSync(join(plan.workDirectory, NO_ORIGINAL)) || existsSync(emptyOriginal);
    if (!original && !nothing) return `${plan.dataDirectory} was not touched`;
    // What is at the path is the standby's once the staged copy has left the work directory.
    if (existsSync(join(plan.dataDirectory, 'PG_VERSION')) && !existsSync(join(plan.workDirectory, 'data'))) {
      if (await isRunning(cc(plan), plan.dataDirectory))
        await pgCtl(cc(plan), plan.dataDirectory, ['stop', '-m', 'immediate', '-w'], { reject: false });
      await rm(failed, { recursive: true, force: true });
      await rename(plan.dataDirectory, failed);
    }
    if (existsSync(join(plan.workDirectory, PASSFILE_CREATED))) await rm(standbyPassfileOf(plan), { force: true });
    const kept = existsSync(failed) ? `; the failed standby is kept as ${failed}` : '';
    if (original) {
      await rename(plan.asideDirectory, plan.dataDirectory);
      return `${plan.dataDirectory} is back as it was${kept}`;
    }
    if (existsSync(emptyOriginal)) {
      if (!existsSync(plan.dataDirectory)) await mkdir(plan.dataDirectory, { mode: 0o700 });
      if ((await readdir(plan.dataDirectory)).length === 0) {
        const found = JSON.parse(await readFile(emptyOriginal, 'utf8')) as { mode: number; uid: number; gid: number };
        await chmod(plan.dataDirectory, found.mode);
        if (process.getuid?.() === 0) await chown(plan.dataDirectory, found.uid, found.gid);
      }
      return `${plan.dataDirectory} is empty again${kept}`;
    }
    return `${plan.dataDirectory} is missing again, as it was${kept}`;
  }

  /** The work directory (a staged copy not swapped in, the swap's markers) goes. */
  async function cleanupStandby(plan: StandbyPlan): Promise<void> {
    await rm(plan.workDirectory, { recursive: true, force: true });
  }

  return { planStandby, checkStandbyTarget, startStandby, rollbackStandby, cleanupStandby };
}

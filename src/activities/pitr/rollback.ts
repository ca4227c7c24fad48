// The way back: after a failure past the swap, the original data directory is moved back and started.
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorType, retryable } from '../../lib/errors.js';
import { EMPTY_ORIGINAL, NO_ORIGINAL, type PitrContext } from './context.js';
import { isRunning, pgCtl } from './server.js';
import { prepareLog } from './serverLog.js';
import type { RecoveryPlan } from './types.js';

export function createRollbackActivities({ cc, serverLogOf, runClusterHook }: PitrContext) {
  /** Starts the original data directory again (a rollback), logging where the cluster logs. */
  async function startOriginal(plan: RecoveryPlan): Promise<void> {
    const logFile = serverLogOf(plan);
    await prepareLog(logFile, await stat(plan.dataDirectory));
    const r = await pgCtl(cc(plan), plan.dataDirectory, ['start', '-w', '-t', '600', '-l', logFile], { reject: false });
    if (r.exitCode !== 0)
      throw retryable(
        ErrorType.ClusterControlFailed,
        `rolled back, but the original server did not start (log ${logFile}): ${r.stderr || r.stdout}`,
      );
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
        if (await isRunning(cc(plan), plan.dataDirectory))
          await pgCtl(cc(plan), plan.dataDirectory, ['stop', '-m', 'immediate', '-w'], { reject: false });
        await rm(failed, { recursive: true, force: true });
        await rename(plan.dataDirectory, failed);
      }
      await runClusterHook(plan, 'postRestore');
      return `${plan.dataDirectory} did not exist before the recovery and is missing again; the failed recovery is kept as ${failed}`;
    }
    const emptyOriginal = join(plan.workDirectory, EMPTY_ORIGINAL);
    if (existsSync(emptyOriginal)) {
      // A rebuilt host's empty data directory, removed by the swap (not kept): the failed recovery is
      // kept aside and the directory laid down empty again, with its mode and owner, as it was found.
      // While the staged copy is still in the work directory, what is at the path is not the recovery's;
      // nor is a directory without PG_VERSION (the one a retried rollback laid down already).
      const laid = existsSync(join(plan.dataDirectory, 'PG_VERSION')) && !existsSync(join(plan.workDirectory, 'data'));
      if (laid) {
        if (await isRunning(cc(plan), plan.dataDirectory))
          await pgCtl(cc(plan), plan.dataDirectory, ['stop', '-m', 'immediate', '-w'], { reject: false });
        await rm(failed, { recursive: true, force: true });
        await rename(plan.dataDirectory, failed);
      }
      if (!existsSync(plan.dataDirectory)) await mkdir(plan.dataDirectory, { mode: 0o700 });
      if ((await readdir(plan.dataDirectory)).length === 0) {
        const found = JSON.parse(await readFile(emptyOriginal, 'utf8')) as { mode: number; uid: number; gid: number };
        await chmod(plan.dataDirectory, found.mode); // mkdir's mode passes through the umask
        if (process.getuid?.() === 0) await chown(plan.dataDirectory, found.uid, found.gid);
      }
      await runClusterHook(plan, 'postRestore');
      const kept = existsSync(failed) ? `; the failed recovery is kept as ${failed}` : '';
      if ((await readdir(plan.dataDirectory)).length)
        return `${plan.dataDirectory} is as it was found, with no cluster in it${kept}`;
      return `${plan.dataDirectory} was empty before the recovery and is empty again${kept}`;
    }
    if (!existsSync(plan.asideDirectory)) {
      // The swap never happened: the live directory is where it was. Make sure it runs (an empty
      // one, a rebuilt host's, has nothing to run).
      if (!(await isRunning(cc(plan), plan.dataDirectory)) && existsSync(join(plan.dataDirectory, 'PG_VERSION')))
        await startOriginal(plan);
      // Also where an attempt that moved the original back died (worker killed) before or in the
      // hook: the applications stopped by `stop` are started again all the same.
      await runClusterHook(plan, 'postRestore');
      if (!existsSync(join(plan.dataDirectory, 'PG_VERSION')))
        return `${plan.dataDirectory} is as it was found, with no cluster in it`;
      return 'the original data directory is in place and running';
    }
    if (existsSync(plan.dataDirectory)) {
      if (await isRunning(cc(plan), plan.dataDirectory))
        await pgCtl(cc(plan), plan.dataDirectory, ['stop', '-m', 'immediate', '-w'], { reject: false });
      await rm(failed, { recursive: true, force: true });
      await rename(plan.dataDirectory, failed);
    }
    await rename(plan.asideDirectory, plan.dataDirectory);
    // An empty original (a rebuilt host's) goes back empty, as found: nothing to start.
    if (existsSync(join(plan.dataDirectory, 'PG_VERSION'))) await startOriginal(plan);
    await runClusterHook(plan, 'postRestore');
    return `rolled back to the original data directory after: ${plan.reason}`;
  }

  return { rollbackRecovery };
}

// pointInTimeRecovery: the seven steps of DESIGN.md (replaces prepare-recovery.sh,
// execute-recovery.sh, restore-pitr.sh): plan → stage → approve → stop → swap → recover → verify.
// In-place mode replays the staged copy to the target beside the running cluster (pre-replay), then
// waits for approval before touching anything, replays only what is left after it, and rolls back
// to the moved-aside data directory if anything after the swap fails. Rehearsal mode recovers a
// scratch copy on a free port, never touches the live cluster, asks nobody, and removes the copy.
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  patched,
  proxyActivities,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, PreReplayOutcome, RecoveryMode, RecoveryOutcome, RecoveryPlan } from '../activities/index.js';
import { LONG_ACTIVITY, QUICK_ACTIVITY } from '../lib/activityOptions.js';
import { preReplaySentence } from '../lib/preReplayEstimate.js';
import type { RecoveryTarget } from '../lib/recovery.js';
import { announceApproval } from './approvalNotice.js';
import { rehearse } from './pitrRehearsal.js';
import { showingFailure, showOutcome, trackProgress, waitForApproval, type ApprovalDecision } from './messages.js';
import { selfLabels } from './selfLabels.js';

export interface PointInTimeRecoveryInput {
  cluster: string;
  target: RecoveryTarget;
  /** Default "in-place". */
  mode?: RecoveryMode;
  /** How long `approve` waits (in-place); default 24 hours. */
  approvalTimeout?: string;
}

export interface PointInTimeRecoveryResult {
  outcome: 'recovered' | 'rehearsed' | 'rejected' | 'timed-out';
  cluster: string;
  mode: RecoveryMode;
  target: string;
  backupId: string;
  decision?: ApprovalDecision;
  recovery?: RecoveryOutcome;
  /** In place: the replay before the approval, and what it left for after it. */
  preReplay?: PreReplayOutcome;
  /** Where the previous data directory is kept (in-place). */
  previousDataDirectory?: string;
  /** Seconds per step, in order. */
  steps: { step: string; seconds: number }[];
}

const quick = proxyActivities<Activities>(QUICK_ACTIVITY);

/** The run's current details end with its outcome, a failure included. */
export async function pointInTimeRecovery(input: PointInTimeRecoveryInput): Promise<PointInTimeRecoveryResult> {
  return showingFailure(() => recoverToPoint(input));
}

async function recoverToPoint(input: PointInTimeRecoveryInput): Promise<PointInTimeRecoveryResult> {
  const mode = input.mode ?? 'in-place';
  const timings: { step: string; seconds: number }[] = [];
  const progress = trackProgress('plan');
  await selfLabels('pitr', input);
  let current = { step: 'plan', at: Date.now() };
  const step = (name: string, detail?: string) => {
    timings.push({ step: current.step, seconds: (Date.now() - current.at) / 1000 });
    current = { step: name, at: Date.now() };
    progress(name, detail);
  };

  // Plan must see the base backups and WAL to prove the path: what only offsite has is fetched
  // (checked) into the local repository first. Nothing here touches the cluster.
  // Each activity carries a summary that reads like the runbook's step (shown in the UI's timeline).
  await proxyActivities<Activities>(LONG_ACTIVITY).fetchRecoveryFromOffsite.executeWithOptions(
    { summary: `fetch base backups and WAL of ${input.cluster} from offsite if only offsite has them` },
    [{ cluster: input.cluster, target: input.target }],
  );
  // Plan proves from the WAL's content that replay reaches the target; while the archive does not
  // reach it yet, plan waits for archiving (bounded by archiveWaitSeconds), asked again every few seconds.
  const prove = patched('pitr-proves-target-from-wal') ? { prove: true } : {};
  const planSummary = {
    summary: `plan: pick the base backup and prove the WAL of ${input.cluster} reaches the target`,
  };
  let plan: RecoveryPlan = await quick.planRecovery.executeWithOptions(planSummary, [
    { cluster: input.cluster, target: input.target, mode, runId: workflowInfo().runId, ...prove },
  ]);
  while (plan.pending) {
    progress('plan', plan.pending.detail);
    await sleep('3 seconds');
    plan = await quick.planRecovery.executeWithOptions(planSummary, [
      {
        cluster: input.cluster,
        target: input.target,
        mode,
        runId: workflowInfo().runId,
        ...prove,
        waiting: plan.pending,
      },
    ]);
  }
  // Everything that touches the data directory runs on the database host's own worker.
  const host = proxyActivities<Activities>({ ...LONG_ACTIVITY, taskQueue: plan.hostQueue });
  // A cancelled run waits until the host step in flight has ended (a swap mid-rename, a stop in its
  // hook) before it rolls back or cleans up on the same directories. Patched: a history cancelled
  // during a host step under the old behaviour (TRY_CANCEL) scheduled its rollback earlier.
  const waitOnCancel = patched('pitr-host-steps-wait-on-cancel')
    ? { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED }
    : {};
  const hostQuick = proxyActivities<Activities>({
    ...QUICK_ACTIVITY,
    startToCloseTimeout: '15 minutes',
    taskQueue: plan.hostQueue,
    ...waitOnCancel,
  });
  const base = { cluster: input.cluster, mode, target: plan.targetDescription, backupId: plan.backupId };
  const finish = () => timings.push({ step: current.step, seconds: (Date.now() - current.at) / 1000 });

  let swapped = false;
  let done = false;
  let movedAside = true;
  let cleaned = false;
  let rollbackFromStop = false;
  let laid = false;
  try {
    step('stage', `base backup ${plan.backupId} and ${plan.walFiles.length} WAL files into ${plan.workDirectory}`);
    let decision: ApprovalDecision | undefined;
    let recovery: RecoveryOutcome;
    let preReplay: PreReplayOutcome | undefined;
    if (mode === 'in-place') {
      const staged = await host.stageRecovery.executeWithOptions(
        { summary: `stage base backup ${plan.backupId} and ${plan.walFiles.length} WAL files` },
        [plan],
      );
      // The replay happens before the approval, while the cluster runs: the staged copy recovered
      // to the target on a private port and shut down there; after the approval only what is left.
      if (patched('pitr-replay-before-approval')) {
        step(
          'pre-replay',
          `recover the staged copy to ${plan.targetDescription} on a private port while ${input.cluster} runs`,
        );
        preReplay = await host.preReplay.executeWithOptions(
          {
            summary: `replay before the approval: recover the staged copy of ${input.cluster} to ${plan.targetDescription} on a private port`,
          },
          [plan],
        );
      }
      const what =
        (staged?.dataDirectory === 'missing' || staged?.dataDirectory === 'empty'
          ? `${plan.dataDirectory} is ${staged.dataDirectory} on this host (nothing to stop or keep): lay base backup ${plan.backupId} there and recover to ${plan.targetDescription}.`
          : `stop ${input.cluster}, keep ${plan.dataDirectory} as ${plan.asideDirectory}, recover base backup ${plan.backupId} to ${plan.targetDescription}.`) +
        (preReplay ? ` ${preReplaySentence(preReplay, input.cluster)}` : '');
      step('approve', `${what} Approve: pgwarden approve ${workflowInfo().workflowId} --approver NAME --reason TEXT`);
      await announceApproval(
        input.cluster,
        `Point-in-time recovery of ${input.cluster} is staged and waits for approval: ${what}`,
      );
      decision = await waitForApproval(input.approvalTimeout ?? '24 hours', what);
      if (!decision?.approved) {
        finish();
        showOutcome(
          decision
            ? `rejected by ${decision.approver}: ${decision.reason}; nothing was touched`
            : 'timed out waiting for approval; nothing was touched',
        );
        return { ...base, outcome: decision ? 'rejected' : 'timed-out', decision, steps: timings };
      }
      step('stop');
      // `latest` is the stopped server's last committed transaction: the archive is brought up to
      // date while the server runs, and after the stop its pg_wal supplies what the archive lacks.
      const toLast = 'latest' in input.target && patched('pitr-latest-includes-unarchived-wal');
      if (toLast) {
        let flushed = await quick.archiveCurrentWal({ plan });
        while (!flushed.done) {
          progress('stop', flushed.detail);
          await sleep('2 seconds');
          flushed = await quick.archiveCurrentWal({ plan, waiting: flushed });
        }
        progress('stop', flushed.detail);
      }
      // A stop that fails (its pre-stop hook, pg_ctl) also ends with the cluster and its
      // applications started again (rollbackRecovery: postRestore hook), never left half-stopped.
      rollbackFromStop = patched('pitr-rollback-from-stop');
      if (rollbackFromStop) swapped = true;
      await hostQuick.stopCluster.executeWithOptions(
        { summary: `run the pre-stop hook, stop cluster ${input.cluster}` },
        [plan],
      );
      if (toLast) {
        swapped = true; // a failure from here on starts the original data directory again (rollbackRecovery)
        const gathered = await hostQuick.gatherUnarchivedWal(plan);
        const archivedNow = gathered.notArchived ?? `${gathered.archived?.length ?? 0} of them archived now`;
        progress(
          'stop',
          `staged ${gathered.fromArchive.length} newly archived WAL segments and ${gathered.fromPgWal.length} from ${plan.dataDirectory}/pg_wal that the archive lacks (${archivedNow})`,
        );
      }
      step('swap', `${plan.dataDirectory} → ${plan.asideDirectory}`);
      swapped = true; // from here on, a failure rolls back (the swap itself is idempotent)
      laid = true;
      const swap = await hostQuick.swapDataDirectory.executeWithOptions(
        { summary: `move ${plan.dataDirectory} aside to ${plan.asideDirectory}, lay base backup ${plan.backupId}` },
        [plan],
      );
      movedAside = swap?.movedAside !== false; // a rebuilt host had no data directory to keep
      step(
        'recover',
        preReplay
          ? `${plan.targetDescription}, from the restartpoint at ${preReplay.restartLsn} (replayed up to ${preReplay.reachedLsn} before the approval)`
          : plan.targetDescription,
      );
      recovery = await host.recover.executeWithOptions(
        { summary: `recover ${input.cluster} to ${plan.targetDescription}` },
        [plan],
      );
    } else {
      recovery = await rehearse(host, hostQuick, plan, input.cluster, () =>
        step('recover', `${plan.targetDescription}; WAL staged alongside`),
      );
    }
    step('verify');
    await host.verifyRecovery.executeWithOptions(
      { summary: `verify ${input.cluster}: checks, post-start hook, recovery report` },
      [{ ...plan, port: recovery.port }],
    );
    finish();
    done = true;
    const early = preReplay
      ? `; replayed before the approval, after it from ${recovery.redoStart ?? preReplay.restartLsn}`
      : '';
    showOutcome(
      `${mode === 'in-place' ? 'recovered' : 'rehearsed'} ${input.cluster} to ${plan.targetDescription} from base backup ${plan.backupId}${early}`,
    );
    return {
      ...base,
      outcome: mode === 'in-place' ? 'recovered' : 'rehearsed',
      decision,
      recovery,
      ...(preReplay ? { preReplay } : {}),
      previousDataDirectory: mode === 'in-place' && movedAside ? plan.asideDirectory : undefined,
      steps: timings,
    };
  } catch (err) {
    const reason = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    if (swapped) {
      progress('rollback', reason);
      const rolledBack = await CancellationScope.nonCancellable(() =>
        hostQuick.rollbackRecovery.executeWithOptions(
          { summary: `roll back: start ${input.cluster} again on ${plan.dataDirectory}` },
          [{ ...plan, reason }],
        ),
      );
      showOutcome(`failed and rolled back: ${reason}`);
      throw ApplicationFailure.create({
        type: 'RecoveryFailed',
        message: `recovery failed and was rolled back: ${reason}. ${rolledBack}`,
        nonRetryable: true,
      });
    }
    showOutcome(
      `${isCancellation(err) ? 'cancelled' : `failed: ${reason}`}; the live cluster ${input.cluster} was not touched`,
    );
    if (mode === 'rehearsal' && !isCancellation(err)) {
      // A failed drill keeps its server's log (outside the work directory) and names it.
      cleaned = true;
      const kept = await CancellationScope.nonCancellable(() =>
        hostQuick.cleanupRecovery({ ...plan, keepLog: true }),
      ).catch(() => undefined);
      if (kept?.keptLog) {
        throw ApplicationFailure.create({
          type: 'RecoveryFailed',
          message: `rehearsal failed: ${reason}. Its recovery log is kept at ${kept.keptLog}`,
          nonRetryable: true,
          cause: err instanceof Error ? err : undefined,
        });
      }
    }
    throw err;
  } finally {
    // The working directory (staged copy, decoded WAL) goes on every path but a rollback, whose
    // logs are kept for the post-mortem.
    // A failure before the swap (a stop that failed, unarchived WAL refused) leaves nothing worth
    // keeping there: the staged copy, a whole cluster, goes too.
    if (!cleaned && (done || !swapped || (rollbackFromStop && !laid)))
      await CancellationScope.nonCancellable(() => hostQuick.cleanupRecovery(plan)).catch(() => undefined);
  }
}

import { ApplicationFailure, CancellationScope, defineQuery, defineSignal, isCancellation, log, setHandler } from '@temporalio/workflow';
import { CANCEL_SIGNAL, PROGRESS_QUERY, type BackupInput, type BackupResult, type SkippedResult, type Step } from '../contracts/index.js';
import {
  archive, beginRun, cleanup, compensate, completedManifest, dump, finalize, follow, listenForLock, preflight, releaseLock, skip, startUploads,
  stopFollowing, succeed, takeLock, uploadVerified,
} from './backup-steps.js';
import { describeFailure, endOfRun } from './failure.js';
import { longSteps } from './proxies.js';

export const cancelSignal = defineSignal<[string?]>(CANCEL_SIGNAL);
export const progressQuery = defineQuery<{ step: Step; finalized: { destination: string; path: string }[] }>(PROGRESS_QUERY);

/**
 * One backup run: lock → preflight → dump (one activity per source) → archive → for each destination: upload →
 * verify (re-upload on mismatch, bounded; beside the first verify, checksum of the components) → finalize → cleanup →
 * notify. Success is returned only after every destination re-read the stored file and matched size and SHA-256.
 * Any failure or cancellation runs the compensation (temporary files and staging removed, finalized backups
 * untouched) in a non-cancellable scope, notifies, and then fails (or is cancelled) so that the Web UI and
 * `temporal workflow list` show it.
 *
 * Two runs of one job never dump or upload at once: each run first takes the job's lock (a lock workflow, asked
 * with signal-with-start), waits for it at most `lockWait`, and is otherwise skipped with a notification.
 * The steps are in backup-steps.ts; the activity option sets in proxies.ts.
 */
export async function backupWorkflow(input: BackupInput): Promise<BackupResult | SkippedResult> {
  const run = beginRun(input);
  setHandler(progressQuery, () => ({ step: run.step, finalized: run.finalized }));
  const main = new CancellationScope();
  setHandler(cancelSignal, (reason) => {
    log.info('cancel signal received', { reason });
    main.cancel();
  });
  listenForLock(run);
  try {
    const result = await main.run(async () => {
      const lock = await takeLock(run);
      if (!lock) return undefined;
      const plan = await preflight(run, lock);
      if (!plan) return undefined;
      const steps = longSteps(plan);
      // With uploadWhileDumping (the default; not to S3), the first destination's upload follows the dump as it writes
      // (README, "How a backup overlaps its steps"); without it, nothing starts here.
      const following = follow(run, plan);
      let dumped, archived;
      try {
        dumped = await dump(run, plan, steps);
        archived = await archive(run, plan, steps, dumped);
      } catch (err) {
        await stopFollowing(following);
        throw err;
      }
      const uploads = startUploads();
      try {
        for (const d of plan.destinations) {
          await uploadVerified(run, plan, steps, d, archived, dumped.components, uploads, following);
          await finalize(run, steps, d, await completedManifest(run, archived, uploads));
        }
      } finally {
        // A run that fails before its checksum finished does not leave it reading staging during compensation.
        uploads.checksumScope.cancel();
      }
      if (!uploads.manifest) throw ApplicationFailure.nonRetryable('no destination was written', 'CONFIG_INVALID');
      return cleanup(run, plan, archived, uploads.manifest);
    });
    await CancellationScope.nonCancellable(() => releaseLock(run));
    return result ? await succeed(run, result) : await skip(run);
  } catch (err) {
    const cancelled = isCancellation(err);
    const failure = describeFailure(err, run.plan?.retries ?? run.retries);
    log.error(cancelled ? 'backup cancelled' : 'backup failed', { step: run.step, ...failure });
    await compensate(run, cancelled, failure);
    throw endOfRun(err, `backup ${input.job}`, run.step, failure, failure.attempts);
  }
}

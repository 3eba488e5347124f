import {
  ApplicationFailure, CancellationScope, condition, isCancellation, log, setHandler, upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { SEARCH_ATTRIBUTE_NAMES, rfc3339Seconds, type SkippedResult, type Step } from '../contracts/index.js';
import type { PgbackrestInput, PgbackrestResult } from '../contracts/pgbackrest.js';
import { cancelSignal } from './backup.js';
import { details, endFailedRun, listenForLock, notifyAll, releaseLock, setOutcome, typeAndSlot } from './backup-steps.js';
import { describeFailure, endOfRun } from './failure.js';
import { longSteps, shortSteps } from './proxies.js';

const BackupJob = defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.job, SearchAttributeType.KEYWORD);
const BackupTypeKey = defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.type, SearchAttributeType.KEYWORD);

const quick = shortSteps();

/**
 * One backup of a `kind: pgbackrest` job: the stanza's lock (the job lock workflow, keyed by stanza) → preflight
 * (`pgbackrest check`) → `pgbackrest backup` (heartbeating, cancellable) → verify (`info`: the new label, its type,
 * no error; `verify`; the WAL continuity check) → notify. Like backupWorkflow it is tagged with the job, type and
 * outcome, notifies start, success, failure, cancellation and skips through the job's notifiers, and ends failed
 * (with the step and pgBackRest's message) when anything fails. pgBackRest's repository is left as pgBackRest left it.
 */
export async function pgbackrestWorkflow(input: PgbackrestInput): Promise<PgbackrestResult | SkippedResult> {
  const info = workflowInfo();
  if (typeof input !== 'object' || input === null || typeof input.job !== 'string' || input.job === '') {
    throw ApplicationFailure.nonRetryable('input must be a JSON object with a "job" name, e.g. {"job":"db","type":"diff"}', 'CONFIG_INVALID');
  }
  const { type, slotDate } = typeAndSlot(input);
  upsertSearchAttributes([{ key: BackupJob, value: input.job }, { key: BackupTypeKey, value: type }]);
  const run = {
    input, type, slot: rfc3339Seconds(slotDate), startedAt: Date.now(), workflowId: info.workflowId, runId: info.runId,
    step: 'lock' as Step, notifiers: undefined as string[] | undefined, notifyTimeoutMs: 30 * 60_000, heartbeatTimeoutMs: 60_000, retries: 5,
    lockId: undefined as string | undefined, lockGranted: false, startPing: Promise.resolve(), warnings: [] as string[],
  };
  const main = new CancellationScope();
  setHandler(cancelSignal, (reason) => {
    log.info('cancel signal received', { reason });
    main.cancel();
  });
  listenForLock(run);
  const event = { job: input.job, type, slot: run.slot, workflowId: run.workflowId, runId: run.runId };
  try {
    const result = await main.run(async (): Promise<PgbackrestResult | undefined> => {
      details(run, 'waiting for the stanza lock');
      const lock = await quick.requestStanzaLock({ job: input.job });
      Object.assign(run, { lockId: lock.lockWorkflowId, notifiers: lock.notifiers, notifyTimeoutMs: lock.notifyTimeoutMs, retries: lock.retries, heartbeatTimeoutMs: lock.heartbeatTimeoutMs });
      if (!(await condition(() => run.lockGranted, lock.waitMs))) return undefined;
      run.startPing = notifyAll(run, { kind: 'start', ...event }, 20_000);
      run.step = 'preflight';
      details(run, 'pgbackrest check');
      const plan = await shortSteps(run.retries).pgbackrestPreflight({ job: input.job });
      run.notifiers = plan.notifiers;
      const long = longSteps({ retries: run.retries, heartbeatTimeoutMs: run.heartbeatTimeoutMs });
      run.step = 'backup';
      details(run, `pgbackrest ${type} backup of stanza ${plan.stanza}`);
      const made = await long.pgbackrestBackup({ job: input.job, type, labels: plan.labels });
      run.step = 'verify';
      details(run, `verify ${made.label}: info, pgbackrest verify, WAL continuity`);
      const facts = await long.pgbackrestVerify({ job: input.job, type, label: made.label, ...(made.check ? { check: made.check } : {}) });
      if (facts.type !== type) run.warnings.push(`pgBackRest found no full backup to take a ${type} against and made a full backup (${facts.label}) instead`);
      return {
        status: run.warnings.length > 0 ? 'succeeded_with_warnings' : 'succeeded', kind: 'pgbackrest', workflowId: run.workflowId, job: input.job, type,
        slot: run.slot, warnings: run.warnings, durationMs: Date.now() - run.startedAt, pgbackrest: facts,
      };
    });
    await CancellationScope.nonCancellable(() => releaseLock(run));
    await run.startPing;
    if (!result) {
      const reason = `another run of stanza lock of job ${input.job} held the lock for more than its lockWait; this run was skipped so that two pgBackRest backups of one stanza never run at once`;
      setOutcome('skipped');
      details(run, `skipped: ${reason}`);
      await notifyAll(run, { kind: 'skipped', ...event, reason });
      return { status: 'skipped', workflowId: run.workflowId, job: input.job, type, slot: run.slot, reason };
    }
    run.step = 'notify';
    setOutcome(result.status);
    details(run, `${result.status}: ${result.pgbackrest.label}`);
    const done = { ...result, durationMs: Date.now() - run.startedAt };
    await notifyAll(run, { kind: 'success', result: done });
    return done;
  } catch (err) {
    const cancelled = isCancellation(err);
    const failure = describeFailure(err, run.retries);
    log.error(cancelled ? 'pgbackrest backup cancelled' : 'pgbackrest backup failed', { step: run.step, ...failure });
    // pgBackRest's repository is left as pgBackRest left it: nothing of ours to clean up.
    await CancellationScope.nonCancellable(() => endFailedRun(run, cancelled, failure, { finalized: [] }));
    throw endOfRun(err, `pgbackrest backup ${input.job}`, run.step, failure, failure.attempts);
  }
}

import {
  ApplicationFailure, CancellationScope, CancelledFailure, condition, defineQuery, defineSignal,
  getExternalWorkflowHandle, isCancellation, log, proxyActivities, setCurrentDetails, setHandler, upsertSearchAttributes,
  workflowInfo, type ActivityOptions,
} from '@temporalio/workflow';
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { PERMANENT_CODES } from '../errors.js';
import { lockGrantedSignal, releaseSignal } from './lock.js';
import type { Activities } from '../activities/index.js';
import { describeFailure } from './failure.js';
import {
  CANCEL_SIGNAL, PROGRESS_QUERY, rfc3339Seconds, type BackupInput, type BackupResult, type BackupType,
  type ChecksumResult, type ComponentResult, type RunPlan, type SkippedResult, type Step,
} from '../contracts/backup.js';
import type { BackupEvent } from '../contracts/events.js';
import { completeManifest, type Manifest } from '../contracts/manifest.js';
import { SEARCH_ATTRIBUTE_NAMES } from '../contracts/search-attributes.js';

export const cancelSignal = defineSignal<[string?]>(CANCEL_SIGNAL);
export const progressQuery = defineQuery<{ step: Step; finalized: { destination: string; path: string }[] }>(PROGRESS_QUERY);

const ScheduledStartTime = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);
const BackupJob = defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.job, SearchAttributeType.KEYWORD);
const BackupTypeKey = defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.type, SearchAttributeType.KEYWORD);
const BackupOutcome = defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.outcome, SearchAttributeType.KEYWORD);

function retry(maximumAttempts: number) {
  return { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts, nonRetryableErrorTypes: PERMANENT_CODES };
}

const quick = proxyActivities<Activities>({ startToCloseTimeout: '5m', retry: retry(5) });

/**
 * One backup run: lock → preflight → dump (one activity per source) → archive → for each destination: upload →
 * verify (re-upload on mismatch, bounded; beside the first verify, checksum of the components) → finalize → cleanup →
 * notify. Success is returned only after every
 * destination re-read the stored file and matched size and SHA-256. Any failure or cancellation runs the compensation
 * (temporary files and staging removed, finalized backups untouched) in a non-cancellable scope, notifies, and then
 * fails (or is cancelled) so that the Web UI and `temporal workflow list` show it.
 *
 * Two runs of one job never dump or upload at once: each run first takes the job's lock (a lock workflow, asked
 * with signal-with-start), waits for it at most `lockWait`, and is otherwise skipped with a notification.
 */
export async function backupWorkflow(input: BackupInput): Promise<BackupResult | SkippedResult> {
  const info = workflowInfo();
  const startedAt = Date.now();
  if (typeof input !== 'object' || input === null || typeof input.job !== 'string' || input.job === '') {
    throw ApplicationFailure.nonRetryable('input must be a JSON object with a "job" name, e.g. {"job":"app"}', 'CONFIG_INVALID');
  }
  const type: BackupType = input.type ?? 'full';
  if (type !== 'full' && type !== 'diff') throw ApplicationFailure.nonRetryable(`unknown backup type "${String(type)}": use "full" or "diff"`, 'CONFIG_INVALID');
  let scheduled: Date | undefined;
  try {
    scheduled = info.typedSearchAttributes.get(ScheduledStartTime);
  } catch {
    scheduled = undefined;
  }
  const slotDate = input.slot ? new Date(input.slot) : scheduled ?? info.startTime;
  if (Number.isNaN(slotDate.getTime())) throw ApplicationFailure.nonRetryable(`slot "${input.slot}" is not an ISO time`, 'CONFIG_INVALID');
  const slot = rfc3339Seconds(slotDate);
  upsertSearchAttributes([{ key: BackupJob, value: input.job }, { key: BackupTypeKey, value: type }]);
  const outcome = (value: string) => upsertSearchAttributes([{ key: BackupOutcome, value }]);

  let step: Step = 'lock';
  let plan: RunPlan | undefined;
  let notifiers: string[] | undefined;
  let notifyTimeoutMs = 30 * 60_000;
  let retries = 5;
  let heartbeatTimeoutMs = 60_000;
  const finalized: { destination: string; path: string }[] = [];
  const uploaded = new Set<string>();
  const warnings: string[] = [];
  const details = (text: string) => setCurrentDetails(`**${input.job}** ${type} backup, slot ${slot}: ${text}`);
  setHandler(progressQuery, () => ({ step, finalized }));

  const main = new CancellationScope();
  setHandler(cancelSignal, (reason) => {
    log.info('cancel signal received', { reason });
    main.cancel();
  });

  const notifyAll = async (event: BackupEvent, timeoutMs = notifyTimeoutMs) => {
    // Heartbeats: a worker that dies mid-send is noticed within the heartbeat timeout, not after the 2 minutes
    // (which, with a short notifyTimeout, used to leave no time for the resend at all).
    const n = proxyActivities<Activities>({
      scheduleToCloseTimeout: timeoutMs, startToCloseTimeout: '2m', heartbeatTimeout: Math.max(heartbeatTimeoutMs, 5_000),
      retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1m' },
    });
    await Promise.all((notifiers ?? []).map(async (notifier) => {
      try {
        await n.notify({ job: input.job, notifier, event });
      } catch (err) {
        // A notifier that fails never hides or replaces the backup's own outcome.
        log.error('notification failed', { notifier, kind: event.kind, error: describeFailure(err, 1).error });
      }
    }));
  };

  let lockId: string | undefined;
  let startPing: Promise<void> = Promise.resolve();
  let skipReason: string | undefined;
  let granted = false;
  setHandler(lockGrantedSignal, () => { granted = true; });
  const releaseLock = async () => {
    if (!lockId) return;
    try {
      await getExternalWorkflowHandle(lockId).signal(releaseSignal, { workflowId: info.workflowId, runId: info.runId });
    } catch (err) {
      log.warn('could not release the job lock (the lock frees it when it sees this run ended)', { error: String(err) });
    }
  };

  try {
    const result = await main.run(async () => {
      details('waiting for the job lock');
      const l = await quick.requestLock({ job: input.job });
      lockId = l.lockWorkflowId;
      notifiers = l.notifiers;
      notifyTimeoutMs = l.notifyTimeoutMs;
      if (!(await condition(() => granted, l.waitMs))) return undefined;
      // The start ping (dead-man's switch) goes out beside the run: a slow or dead notifier never delays the backup.
      startPing = notifyAll({ kind: 'start', job: input.job, type, slot, workflowId: info.workflowId, runId: info.runId }, 20_000);

      step = 'preflight';
      details('preflight');
      retries = l.retries ?? retries;
      heartbeatTimeoutMs = l.heartbeatTimeoutMs ?? heartbeatTimeoutMs;
      plan = await proxyActivities<Activities>({ startToCloseTimeout: '5m', retry: retry(retries) }).preflight({ job: input.job, type, tier: input.tier, slot });
      notifiers = plan.notifiers;
      notifyTimeoutMs = plan.notifyTimeoutMs;
      heartbeatTimeoutMs = plan.heartbeatTimeoutMs;
      warnings.push(...plan.warnings);
      if (plan.destinations.length === 0) {
        skipReason = `slot ${slot} is already backed up (${plan.alreadyStored.map((a) => `${a.destination}:${a.path}`).join(', ')}); each slot runs once`;
        return undefined;
      }
      const long: ActivityOptions = { startToCloseTimeout: '24h', heartbeatTimeout: plan.heartbeatTimeoutMs, retry: retry(plan.retries) };
      const steps = proxyActivities<Activities>(long);

      step = 'dump';
      const components: ComponentResult[] = [];
      let offset = 0;
      for (const source of plan.sources) {
        details(`dump of ${source.name}`);
        const c = await steps.dump({ job: input.job, workflowId: info.workflowId, source: source.name, offset, slot, ...(plan.base ? { base: plan.base.workflowId } : {}) });
        components.push(c);
        warnings.push(...c.warnings);
        offset = c.end;
      }

      details('size check');
      const sizes = await quick.checkSizes({ job: input.job, type: plan.type, tier: plan.tier, workflowId: info.workflowId, components });
      // Anomalies go first: the notification headlines the first warning.
      warnings.unshift(...sizes.warnings);

      step = 'archive';
      details('archive');
      const archived = await steps.archive({
        job: input.job, type: plan.type, tier: plan.tier, slot, workflowId: info.workflowId, artifactName: plan.artifactName, components, warnings: [...sizes.warnings, ...plan.warnings],
        ...(plan.base ? { base: plan.base } : {}),
      });

      // The artifact's SHA-256 is what the first upload sent; every later upload must send the same bytes. The
      // components' hashes are taken on the worker while the first destination re-reads its copy (checksum).
      let artifactSha256: string | undefined;
      let checksums: Promise<ChecksumResult> | undefined;
      let manifest: Manifest | undefined;
      const checksumScope = new CancellationScope();
      try {
        for (const d of plan.destinations) {
          for (let attempt = 1; ; attempt++) {
            step = 'upload';
            details(`upload to ${d.name}`);
            uploaded.add(d.name);
            const sent = await steps.upload({
              job: input.job, workflowId: info.workflowId, destination: d.name, tempPath: d.tempPath, size: archived.size, bootId: archived.bootId,
              ...(artifactSha256 ? { sha256: artifactSha256 } : {}),
            });
            artifactSha256 ??= sent.sha256;
            if (!checksums) {
              const ranges = components.map((c) => ({ offset: c.offset, size: c.size }));
              checksums = checksumScope.run(() => steps.checksum({ job: input.job, workflowId: info.workflowId, components: ranges, bootId: archived.bootId }));
              checksums.catch(() => undefined);
            }
            step = 'verify';
            details(`verify on ${d.name}`);
            try {
              await steps.verify({ job: input.job, destination: d.name, path: d.tempPath, size: archived.size, sha256: artifactSha256 });
              break;
            } catch (err) {
              const f = describeFailure(err, plan.retries);
              if (!(f.code === 'VERIFY_MISMATCH' || f.code === 'VERIFY_MISSING') || attempt >= plan.verifyAttempts) throw err;
              warnings.push(`destination "${d.name}": verification failed (${f.error}); uploaded again (attempt ${attempt + 1} of ${plan.verifyAttempts})`);
            }
          }
          if (!manifest) {
            step = 'checksum';
            details('checksum');
            const hashes = await checksums!;
            try {
              manifest = completeManifest(archived.manifest, artifactSha256!, hashes.components);
            } catch (err) {
              throw ApplicationFailure.nonRetryable(`the manifest cannot be completed: ${(err as Error).message}`, 'ARCHIVE_FAILED');
            }
          }
          step = 'finalize';
          details(`finalize on ${d.name}`);
          const done = await steps.finalize({ job: input.job, destination: d.name, tempPath: d.tempPath, finalPath: d.finalPath, manifestPath: d.manifestPath, manifest: { ...manifest, warnings: [...warnings] } });
          finalized.push({ destination: d.name, path: done.path });
        }
      } finally {
        // A run that fails before its checksum finished does not leave it reading staging during compensation.
        checksumScope.cancel();
      }
      if (!manifest) throw ApplicationFailure.nonRetryable('no destination was written', 'CONFIG_INVALID');

      step = 'cleanup';
      await quick.cleanup({ job: input.job, workflowId: info.workflowId, temporary: [], manifest });
      // Retention after a successful run: its failure is reported (a warning), never turns this backup into a failure.
      let pruned: string[] | undefined;
      if (plan.prune) {
        details('prune');
        const p = proxyActivities<Activities>({ startToCloseTimeout: '1h', heartbeatTimeout: '2m', retry: retry(3) });
        try {
          const report = await CancellationScope.nonCancellable(() => p.prune({ job: input.job, dryRun: false }));
          pruned = report.destinations.flatMap((r) => r.removed.map((path) => `${r.destination}:${path}`));
          if (report.refused) warnings.push(`retention refused, nothing was deleted: ${report.refused}`);
          warnings.push(...report.problems.map((problem) => `retention: ${problem}`));
        } catch (err) {
          warnings.push(`retention failed (the backup itself succeeded): ${describeFailure(err, 3).error}`);
        }
      }
      const r: BackupResult = {
        status: warnings.length > 0 ? 'succeeded_with_warnings' : 'succeeded',
        workflowId: info.workflowId, job: input.job, type: plan.type, slot, size: archived.size, sha256: manifest.artifact.sha256,
        locations: finalized, warnings, durationMs: Date.now() - startedAt,
        ...(plan.base ? { base: plan.base } : {}), ...(pruned ? { pruned } : {}),
      };
      return r;
    });
    await CancellationScope.nonCancellable(releaseLock);
    if (!result) {
      await startPing;
      const reason = skipReason ?? `another run of job ${input.job} held the job lock for more than the lockWait of this job; this run was skipped so that two runs never dump or upload at once`;
      log.warn('backup skipped', { reason });
      outcome('skipped');
      details(`skipped: ${reason}`);
      await notifyAll({ kind: 'skipped', job: input.job, type, slot, workflowId: info.workflowId, runId: info.runId, reason });
      return { status: 'skipped', workflowId: info.workflowId, job: input.job, type, slot, reason };
    }
    await startPing;
    step = 'notify';
    outcome(result.status);
    details(`${result.status}: ${result.locations.map((l) => `${l.destination}:${l.path}`).join(', ')}`);
    await notifyAll({ kind: 'success', result: { ...result, durationMs: Date.now() - startedAt } });
    return result;
  } catch (err) {
    const cancelled = isCancellation(err);
    const failure = describeFailure(err, plan?.retries ?? retries);
    log.error(cancelled ? 'backup cancelled' : 'backup failed', { step, ...failure });
    await CancellationScope.nonCancellable(async () => {
      const temporary = plan ? plan.destinations.filter((d) => uploaded.has(d.name) && !finalized.some((f) => f.destination === d.name)).map((d) => ({ destination: d.name, path: d.tempPath })) : [];
      // First as often as any step; a destination that is still away (the fault that failed the run, often) keeps
      // its temporary file for now: the notification says so, and the removal is retried after it (below).
      let leftovers: { destination: string; path: string }[] = [];
      try {
        await proxyActivities<Activities>({ startToCloseTimeout: '5m', retry: retry(plan?.retries ?? retries) })
          .cleanup({ job: input.job, workflowId: info.workflowId, temporary });
      } catch (cleanupErr) {
        log.error('cleanup failed', { error: describeFailure(cleanupErr, 5).error });
        failure.error += `\n(cleanup also failed: ${describeFailure(cleanupErr, 5).error})`;
        leftovers = temporary;
      }
      await releaseLock();
      outcome(cancelled ? 'cancelled' : 'failed');
      details(`${cancelled ? 'cancelled' : 'failed'} in the ${step} step: ${failure.error}`);
      await startPing;
      // Preflight may fail before the plan exists (host key, space): the notifiers still come from the config.
      notifiers ??= await quick.notifiersOf({ job: input.job }).catch(() => [] as string[]);
      await notifyAll({
        kind: cancelled ? 'cancelled' : 'failure', job: input.job, type, slot, workflowId: info.workflowId, runId: info.runId,
        step, error: cancelled ? 'the run was cancelled' : failure.error, code: cancelled ? 'CANCELLED' : failure.code,
        attempts: failure.attempts, finalized, durationMs: Date.now() - startedAt,
        ...(leftovers.length > 0 ? { leftovers, leftoversRetryMs: notifyTimeoutMs } : {}),
      });
      if (leftovers.length > 0) {
        // Keep trying for as long as a notification would be (notifyTimeout): an unreachable destination usually
        // comes back, and a temporary file must not outlive the run that wrote it.
        try {
          await proxyActivities<Activities>({ scheduleToCloseTimeout: notifyTimeoutMs, startToCloseTimeout: '5m', retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1m' } })
            .cleanup({ job: input.job, workflowId: info.workflowId, temporary: leftovers });
          log.info('temporary files removed after the destination came back', { leftovers });
        } catch (cleanupErr) {
          log.error('temporary files could not be removed', { leftovers, error: describeFailure(cleanupErr, 5).error });
          failure.error += `\n(temporary files left: ${leftovers.map((l) => `${l.destination}:${l.path}`).join(', ')})`;
        }
      }
    });
    // An external cancel request ends the run as Canceled; a `cancel` signal ends it failed with a CancelledFailure.
    if (cancelled) throw err instanceof CancelledFailure ? err : new CancelledFailure(`backup ${input.job} was cancelled during the ${step} step`);
    const tries = failure.attempts > 1 ? ` after ${failure.attempts} attempts` : '';
    throw ApplicationFailure.create({ message: `backup ${input.job} failed in the ${step} step${tries}: ${failure.error}`, type: failure.code, nonRetryable: true });
  }
}

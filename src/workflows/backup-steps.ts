import {
  ApplicationFailure, CancellationScope, condition, getExternalWorkflowHandle, log, setCurrentDetails, setHandler,
  upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import type { Activities } from '../activities/index.js';
import type { LockInfo } from '../activities/lock.js';
import { describeFailure, type FailureFacts } from './failure.js';
import { lockGrantedSignal, releaseSignal } from './lock.js';
import { followSteps, longSteps, notifySteps, patientSteps, pruneSteps, shortSteps } from './proxies.js';
import {
  NAME_RULE, SEARCH_ATTRIBUTE_NAMES, completeManifest, futureSlotProblem, isName, rfc3339Seconds, type BackupEvent, type BackupInput, type BackupResult, type BackupType,
  type ChecksumResult, type ComponentResult, type Manifest, type RunPlan, type RunRef, type SkippedResult, type Step, type UploadResult,
} from '../contracts/index.js';

// The steps of one backup run (see backupWorkflow in backup.ts, which calls them in order). They share the run's
// state (`BackupRun`): what the compensation and the notifications need to know about how far the run came.

const ScheduledStartTime = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);
const BackupJob = defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.job, SearchAttributeType.KEYWORD);
const BackupTypeKey = defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.type, SearchAttributeType.KEYWORD);
const BackupOutcome = defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.outcome, SearchAttributeType.KEYWORD);

/** Short steps with the default retries (lock request, size check, cleanup after success, notifier lookup). */
const quick = shortSteps();

type LongSteps = ReturnType<typeof longSteps>;
type Archived = Awaited<ReturnType<Activities['archive']>>;
type Location = { destination: string; path: string };

export interface BackupRun {
  readonly input: BackupInput;
  readonly type: BackupType;
  readonly slot: string;
  readonly startedAt: number;
  readonly workflowId: string;
  readonly runId: string;
  step: Step;
  /** The resolved run (from preflight on). */
  plan?: RunPlan;
  /** From the lock request, then from the plan; looked up from the config when a run fails before either. */
  notifiers?: string[];
  notifyTimeoutMs: number;
  retries: number;
  heartbeatTimeoutMs: number;
  readonly finalized: Location[];
  /** Destinations an upload was started to (each may hold a temporary file until it is finalized). */
  readonly uploaded: Set<string>;
  /** Per destination, the last upload's receipt (UploadResult.receipt), for its verify and finalize. */
  readonly receipts: Map<string, string>;
  readonly warnings: string[];
  lockId?: string;
  lockGranted: boolean;
  /** The start notification, sent beside the run. */
  startPing: Promise<void>;
  /** Why a run that got its lock is skipped (its slot is already stored). */
  skipReason?: string;
}

/**
 * What every step after preflight is given to find its job: the config preflight resolved (RunPlan.resolved), so an
 * edit of backup.yml mid-run changes nothing of this run. Before preflight, the job's name alone.
 */
function runRef(run: BackupRun): RunRef {
  return run.plan ? { job: run.input.job, resolved: run.plan.resolved } : { job: run.input.job };
}

/** The destination's receipt of the run's last upload to it, as an optional field. */
function receiptOf(run: BackupRun, destination: string): { receipt?: string } {
  const receipt = run.receipts.get(destination);
  return receipt === undefined ? {} : { receipt };
}

/**
 * A run's type (full unless given) and slot: the given ISO time, else the schedule's time (TemporalScheduledStartTime),
 * else the workflow's start. Both checked: a permanent CONFIG_INVALID otherwise.
 */
export function typeAndSlot(input: { type?: BackupType; slot?: string }): { type: BackupType; slotDate: Date } {
  const info = workflowInfo();
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
  return { type, slotDate };
}

/** Checks the input, fixes the slot (the schedule's time unless given), tags the run with its job and type. */
export function beginRun(input: BackupInput): BackupRun {
  const info = workflowInfo();
  const startedAt = Date.now();
  if (typeof input !== 'object' || input === null || typeof input.job !== 'string' || input.job === '') {
    throw ApplicationFailure.nonRetryable('input must be a JSON object with a "job" name, e.g. {"job":"app"}', 'CONFIG_INVALID');
  }
  // The workflow ID names the run's staging folder (src/repository/names.ts, safeWorkflowId): "." and ".." cannot.
  if (info.workflowId === '.' || info.workflowId === '..') throw ApplicationFailure.nonRetryable(`workflow ID "${info.workflowId}" cannot name a folder: start the run with another workflow ID`, 'CONFIG_INVALID');
  const { type, slotDate } = typeAndSlot(input);
  // Workflow time: the slot may not lie more than five minutes ahead of it.
  const future = futureSlotProblem(slotDate, Date.now());
  if (future) throw ApplicationFailure.nonRetryable(future, 'CONFIG_INVALID');
  // The tier becomes a folder on every destination: a name of the grammar, never a path.
  if (input.tier !== undefined && !isName(input.tier)) throw ApplicationFailure.nonRetryable(`tier ${JSON.stringify(input.tier)} is not a valid name: use ${NAME_RULE}`, 'CONFIG_INVALID');
  upsertSearchAttributes([{ key: BackupJob, value: input.job }, { key: BackupTypeKey, value: type }]);
  return {
    input, type, slot: rfc3339Seconds(slotDate), startedAt, workflowId: info.workflowId, runId: info.runId, step: 'lock',
    notifyTimeoutMs: 30 * 60_000, retries: 5, heartbeatTimeoutMs: 60_000, finalized: [], uploaded: new Set(), receipts: new Map(), warnings: [],
    lockGranted: false, startPing: Promise.resolve(),
  };
}

/** The run's current step in the Web UI. */
export function details(run: Pick<BackupRun, 'input' | 'type' | 'slot'>, text: string): void {
  setCurrentDetails(`**${run.input.job}** ${run.type} backup, slot ${run.slot}: ${text}`);
}

export const setOutcome = (value: string) => upsertSearchAttributes([{ key: BackupOutcome, value }]);

/**
 * Sends `event` to every notifier of the job, each on its own; a notifier that fails is logged and never hides or
 * replaces the backup's own outcome.
 */
export async function notifyAll(run: Pick<BackupRun, 'input' | 'notifiers' | 'notifyTimeoutMs' | 'heartbeatTimeoutMs'>, event: BackupEvent, timeoutMs = run.notifyTimeoutMs): Promise<void> {
  // Heartbeats: a worker that dies mid-send is noticed within the heartbeat timeout, not after the 2 minutes
  // (which, with a short notifyTimeout, used to leave no time for the resend at all).
  const n = notifySteps(timeoutMs, Math.max(run.heartbeatTimeoutMs, 5_000));
  await Promise.all((run.notifiers ?? []).map(async (notifier) => {
    try {
      await n.notify({ job: run.input.job, notifier, event });
    } catch (err) {
      log.error('notification failed', { notifier, kind: event.kind, error: describeFailure(err, 1).error });
    }
  }));
}

/** Listens for the lock workflow's grant (call before the first await of the run). */
export function listenForLock(run: Pick<BackupRun, 'lockGranted'>): void {
  setHandler(lockGrantedSignal, () => { run.lockGranted = true; });
}

/**
 * Takes the job's lock: asks the lock workflow for it and waits at most the job's `lockWait`. Returns the lock
 * request's settings, or undefined when the wait ran out (the run is then skipped). Once the lock is held, the start
 * ping (dead-man's switch) goes out beside the run: a slow or dead notifier never delays the backup.
 */
export async function takeLock(run: BackupRun): Promise<LockInfo | undefined> {
  details(run, 'waiting for the job lock');
  const l = await quick.requestLock({ job: run.input.job });
  run.lockId = l.lockWorkflowId;
  run.notifiers = l.notifiers;
  run.notifyTimeoutMs = l.notifyTimeoutMs;
  if (!(await condition(() => run.lockGranted, l.waitMs))) return undefined;
  run.startPing = notifyAll(run, { kind: 'start', job: run.input.job, type: run.type, slot: run.slot, workflowId: run.workflowId, runId: run.runId }, 20_000);
  return l;
}

/** Gives the lock back; a release that fails is only logged (the lock frees it when it sees this run ended). */
export async function releaseLock(run: Pick<BackupRun, 'lockId' | 'workflowId' | 'runId'>): Promise<void> {
  if (!run.lockId) return;
  try {
    await getExternalWorkflowHandle(run.lockId).signal(releaseSignal, { workflowId: run.workflowId, runId: run.runId });
  } catch (err) {
    log.warn('could not release the job lock (the lock frees it when it sees this run ended)', { error: String(err) });
  }
}

/**
 * Resolves the run into its plan. Returns undefined when there is nothing to do: every destination already holds
 * this slot (each slot runs once).
 */
export async function preflight(run: BackupRun, lock: LockInfo): Promise<RunPlan | undefined> {
  run.step = 'preflight';
  details(run, 'preflight');
  run.retries = lock.retries ?? run.retries;
  run.heartbeatTimeoutMs = lock.heartbeatTimeoutMs ?? run.heartbeatTimeoutMs;
  const plan = await shortSteps(run.retries).preflight({ job: run.input.job, type: run.type, tier: run.input.tier, slot: run.slot });
  run.plan = plan;
  run.notifiers = plan.notifiers;
  run.notifyTimeoutMs = plan.notifyTimeoutMs;
  run.heartbeatTimeoutMs = plan.heartbeatTimeoutMs;
  run.warnings.push(...plan.warnings);
  if (plan.destinations.length > 0) return plan;
  run.skipReason = `slot ${run.slot} is already backed up (${plan.alreadyStored.map((a) => `${a.destination}:${a.path}`).join(', ')}); each slot runs once`;
  return undefined;
}

export interface Dumped {
  components: ComponentResult[];
  /** Size anomalies against earlier runs. */
  sizeWarnings: string[];
}

/** One dump activity per source, each appended to the staged artifact; then the size check against earlier runs. */
export async function dump(run: BackupRun, plan: RunPlan, steps: LongSteps): Promise<Dumped> {
  run.step = 'dump';
  const components: ComponentResult[] = [];
  let offset = 0;
  for (const source of plan.sources) {
    details(run, `dump of ${source.name}`);
    const c = await steps.dump({ ...runRef(run), workflowId: run.workflowId, source: source.name, offset, slot: run.slot, ...(plan.base ? { base: plan.base.workflowId } : {}) });
    components.push(c);
    run.warnings.push(...c.warnings);
    offset = c.end;
  }
  details(run, 'size check');
  const sizes = await shortSteps(run.retries).checkSizes({ ...runRef(run), type: plan.type, tier: plan.tier, workflowId: run.workflowId, components });
  // Anomalies go first: the notification headlines the first warning.
  run.warnings.unshift(...sizes.warnings);
  return { components, sizeWarnings: sizes.warnings };
}

/** Closes the staged artifact and drafts its manifest. */
export async function archive(run: BackupRun, plan: RunPlan, steps: LongSteps, dumped: Dumped): Promise<Archived> {
  run.step = 'archive';
  details(run, 'archive');
  return steps.archive({
    ...runRef(run), type: plan.type, tier: plan.tier, slot: run.slot, workflowId: run.workflowId, artifactName: plan.artifactName,
    components: dumped.components, warnings: [...dumped.sizeWarnings, ...plan.warnings], ...(plan.base ? { base: plan.base } : {}),
  });
}

/**
 * With settings.uploadWhileDumping, the upload to the first destination, started beside the dump: it follows the staged artifact as it grows and ends
 * once archive sealed it (README, "How a backup overlaps its steps"). Its result stands for that destination's first
 * upload.
 */
export interface Following {
  destination: string;
  result: Promise<UploadResult>;
  readonly scope: CancellationScope;
}

export function follow(run: BackupRun, plan: RunPlan): Following | undefined {
  const d = plan.destinations[0];
  if (!d || plan.uploadWhileDumping !== true) return undefined;
  run.uploaded.add(d.name);
  const scope = new CancellationScope();
  const steps = followSteps(plan);
  const result = scope.run(() => steps.upload({ ...runRef(run), workflowId: run.workflowId, destination: d.name, tempPath: d.tempPath, follow: true }));
  result.catch(() => undefined);
  return { destination: d.name, result, scope };
}

/** A run that fails before its artifact is sealed stops the following upload and waits until it has stopped. */
export async function stopFollowing(f: Following | undefined): Promise<void> {
  if (!f) return;
  f.scope.cancel();
  await CancellationScope.nonCancellable(() => f.result.catch(() => undefined));
}

/**
 * What the uploads share: the artifact's SHA-256 is what the first upload sent, and every later upload must send the
 * same bytes; the components' hashes are taken on the worker (checksum) while the first destination re-reads its
 * copy, in a scope of their own that the run cancels when it leaves the upload loop.
 */
export interface Uploads {
  sha256?: string;
  checksums?: Promise<ChecksumResult>;
  readonly checksumScope: CancellationScope;
  manifest?: Manifest;
}

export function startUploads(): Uploads {
  return { checksumScope: new CancellationScope() };
}

/**
 * Uploads the artifact to one destination and verifies the stored copy (size and SHA-256 read back); a copy that
 * does not match or is missing is uploaded again, up to the plan's `verifyAttempts`. The first upload starts the
 * checksum of the components.
 */
export async function uploadVerified(run: BackupRun, plan: RunPlan, steps: LongSteps, d: RunPlan['destinations'][number], archived: Archived, components: ComponentResult[], uploads: Uploads, following?: Following): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    run.step = 'upload';
    details(run, `upload to ${d.name}`);
    run.uploaded.add(d.name);
    let sent = attempt === 1 && following?.destination === d.name ? await following.result : undefined;
    if (sent && sent.bytes !== archived.size) {
      // Never expected: the follower ends at the size archive sealed. Sent again from the sealed artifact.
      log.warn('the following upload sent another size than archive sealed; uploading again', { sent: sent.bytes, archived: archived.size });
      sent = undefined;
    }
    sent ??= await steps.upload({
      ...runRef(run), workflowId: run.workflowId, destination: d.name, tempPath: d.tempPath, size: archived.size, bootId: archived.bootId,
      ...(uploads.sha256 ? { sha256: uploads.sha256 } : {}),
    });
    uploads.sha256 ??= sent.sha256;
    if (sent.receipt !== undefined) run.receipts.set(d.name, sent.receipt);
    else run.receipts.delete(d.name);
    if (!uploads.checksums) {
      const ranges = components.map((c) => ({ offset: c.offset, size: c.size }));
      uploads.checksums = uploads.checksumScope.run(() => steps.checksum({ ...runRef(run), workflowId: run.workflowId, components: ranges, bootId: archived.bootId }));
      uploads.checksums.catch(() => undefined);
    }
    run.step = 'verify';
    details(run, `verify on ${d.name}`);
    try {
      await steps.verify({ ...runRef(run), destination: d.name, path: d.tempPath, size: archived.size, sha256: uploads.sha256, ...receiptOf(run, d.name) });
      return;
    } catch (err) {
      const f = describeFailure(err, plan.retries);
      if (!(f.code === 'VERIFY_MISMATCH' || f.code === 'VERIFY_MISSING') || attempt >= plan.verifyAttempts) throw err;
      run.warnings.push(`destination "${d.name}": verification failed (${f.error}); uploaded again (attempt ${attempt + 1} of ${plan.verifyAttempts})`);
    }
  }
}

/** The manifest, completed once (after the first verify) with the artifact's and the components' SHA-256. */
export async function completedManifest(run: BackupRun, archived: Archived, uploads: Uploads): Promise<Manifest> {
  if (uploads.manifest) return uploads.manifest;
  run.step = 'checksum';
  details(run, 'checksum');
  const hashes = await uploads.checksums!;
  try {
    uploads.manifest = completeManifest(archived.manifest, uploads.sha256!, hashes.components);
  } catch (err) {
    throw ApplicationFailure.nonRetryable(`the manifest cannot be completed: ${(err as Error).message}`, 'ARCHIVE_FAILED');
  }
  return uploads.manifest;
}

/** Commits the verified staged write under its final name beside its manifest (which carries the run's warnings so far). */
export async function finalize(run: BackupRun, steps: LongSteps, d: RunPlan['destinations'][number], manifest: Manifest): Promise<void> {
  run.step = 'finalize';
  details(run, `finalize on ${d.name}`);
  const done = await steps.finalize({ ...runRef(run), destination: d.name, tempPath: d.tempPath, finalPath: d.finalPath, manifestPath: d.manifestPath, manifest: { ...manifest, warnings: [...run.warnings] }, ...receiptOf(run, d.name) });
  run.finalized.push({ destination: d.name, path: done.path });
}

/**
 * Removes the staging, applies retention (its failure is a warning, never turns this backup into a failure), and
 * returns the run's result.
 */
export async function cleanup(run: BackupRun, plan: RunPlan, archived: Archived, manifest: Manifest): Promise<BackupResult> {
  run.step = 'cleanup';
  await quick.cleanup({ ...runRef(run), workflowId: run.workflowId, temporary: [], manifest });
  let pruned: string[] | undefined;
  if (plan.prune) {
    details(run, 'prune');
    const p = pruneSteps();
    try {
      const report = await CancellationScope.nonCancellable(() => p.prune({ ...runRef(run), dryRun: false }));
      pruned = report.destinations.flatMap((r) => r.removed.map((path) => `${r.destination}:${path}`));
      if (report.refused) run.warnings.push(`retention refused, nothing was deleted: ${report.refused}`);
      run.warnings.push(...report.problems.map((problem) => `retention: ${problem}`));
    } catch (err) {
      run.warnings.push(`retention failed (the backup itself succeeded): ${describeFailure(err, 3).error}`);
    }
  }
  return {
    status: run.warnings.length > 0 ? 'succeeded_with_warnings' : 'succeeded',
    workflowId: run.workflowId, job: run.input.job, type: plan.type, slot: run.slot, size: archived.size, sha256: manifest.artifact.sha256,
    locations: run.finalized, warnings: run.warnings, durationMs: Date.now() - run.startedAt,
    ...(plan.base ? { base: plan.base } : {}), ...(pruned ? { pruned } : {}),
  };
}

/** Success: tags the outcome and notifies it (after the start ping). */
export async function succeed(run: BackupRun, result: BackupResult): Promise<BackupResult> {
  await run.startPing;
  run.step = 'notify';
  setOutcome(result.status);
  details(run, `${result.status}: ${result.locations.map((l) => `${l.destination}:${l.path}`).join(', ')}`);
  await notifyAll(run, { kind: 'success', result: { ...result, durationMs: Date.now() - run.startedAt } });
  return result;
}

/** A skipped run (the lock was not granted within lockWait, or the slot is already stored): tagged and notified. */
export async function skip(run: BackupRun): Promise<SkippedResult> {
  const { input, type, slot, workflowId, runId } = run;
  await run.startPing;
  const reason = run.skipReason ?? `another run of job ${input.job} held the job lock for more than the lockWait of this job; this run was skipped so that two runs never dump or upload at once`;
  log.warn('backup skipped', { reason });
  setOutcome('skipped');
  details(run, `skipped: ${reason}`);
  await notifyAll(run, { kind: 'skipped', job: input.job, type, slot, workflowId, runId, reason });
  return { status: 'skipped', workflowId, job: input.job, type, slot, reason };
}

/**
 * The end of a failed or cancelled run once its own cleanup is done (backup and pgBackRest runs alike; call it in a
 * non-cancellable scope): releases the lock, tags the outcome, shows it in the Web UI and notifies it, with what was
 * finalized and what was left behind.
 */
export async function endFailedRun(
  run: Pick<BackupRun, 'input' | 'type' | 'slot' | 'workflowId' | 'runId' | 'startedAt' | 'step' | 'notifyTimeoutMs' | 'heartbeatTimeoutMs' | 'lockId' | 'startPing'> & { notifiers?: string[] | undefined },
  cancelled: boolean, failure: FailureFacts, extra: { finalized: Location[]; leftovers?: Location[]; leftoversRetryMs?: number },
): Promise<void> {
  const { input, type, slot, workflowId, runId } = run;
  await releaseLock(run);
  setOutcome(cancelled ? 'cancelled' : 'failed');
  details(run, `${cancelled ? 'cancelled' : 'failed'} in the ${run.step} step: ${failure.error}`);
  await run.startPing;
  // A run may fail before it knows its notifiers (the lock request, preflight): they still come from the config.
  run.notifiers ??= await quick.notifiersOf({ job: input.job }).catch(() => [] as string[]);
  await notifyAll(run, {
    kind: cancelled ? 'cancelled' : 'failure', job: input.job, type, slot, workflowId, runId,
    step: run.step, error: cancelled ? 'the run was cancelled' : failure.error, code: cancelled ? 'CANCELLED' : failure.code,
    attempts: failure.attempts, durationMs: Date.now() - run.startedAt, ...extra,
  });
}

/**
 * The compensation of a failed or cancelled run, in a non-cancellable scope: discards the pending writes (temporary
 * files, S3 multipart uploads) of destinations not finalized and the staging (finalized backups stay untouched), releases the lock, tags the
 * outcome and notifies it. A destination that is still away keeps its temporary file for now: the notification says
 * so, and the removal is retried for as long as a notification would be. Problems are appended to `failure.error`.
 */
export async function compensate(run: BackupRun, cancelled: boolean, failure: FailureFacts): Promise<void> {
  const { workflowId, plan, finalized } = run;
  await CancellationScope.nonCancellable(async () => {
    const temporary = plan ? plan.destinations.filter((d) => run.uploaded.has(d.name) && !finalized.some((f) => f.destination === d.name)).map((d) => ({ destination: d.name, path: d.tempPath })) : [];
    // First as often as any step; a destination that is still away (the fault that failed the run, often) keeps
    // its temporary file for now: the notification says so, and the removal is retried after it (below).
    let leftovers: Location[] = [];
    try {
      await shortSteps(plan?.retries ?? run.retries).cleanup({ ...runRef(run), workflowId, temporary });
    } catch (cleanupErr) {
      log.error('cleanup failed', { error: describeFailure(cleanupErr, 5).error });
      failure.error += `\n(cleanup also failed: ${describeFailure(cleanupErr, 5).error})`;
      leftovers = temporary;
    }
    await endFailedRun(run, cancelled, failure, { finalized, ...(leftovers.length > 0 ? { leftovers, leftoversRetryMs: run.notifyTimeoutMs } : {}) });
    if (leftovers.length > 0) {
      // Keep trying for as long as a notification would be (notifyTimeout): an unreachable destination usually
      // comes back, and a temporary file must not outlive the run that wrote it.
      try {
        await patientSteps(run.notifyTimeoutMs).cleanup({ ...runRef(run), workflowId, temporary: leftovers });
        log.info('temporary files removed after the destination came back', { leftovers });
      } catch (cleanupErr) {
        log.error('temporary files could not be removed', { leftovers, error: describeFailure(cleanupErr, 5).error });
        failure.error += `\n(temporary files left: ${leftovers.map((l) => `${l.destination}:${l.path}`).join(', ')})`;
      }
    }
  });
}

import { Context, activityInfo } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { getJob, loadConfig } from '../config/load.js';
import type { Config, Job, PgbackrestJob } from '../config/schema.js';
import type { ResolvedConfig, RunRef } from '../contracts/backup.js';
import { BackupError, errorMessage } from '../errors.js';


/** What activities need from the worker: where the config is. Secrets are read from it on demand, never passed in. */
export interface ActivityDeps {
  configFile: string;
}

/**
 * The config and the job an activity acts on. A step of a backup run after preflight is given the config preflight
 * resolved (`ref.resolved`) and never reads backup.yml again; anything else reads the file as it is now.
 */
export function jobContext(deps: ActivityDeps, ref: string | RunRef): { config: Config; job: Job } {
  if (typeof ref === 'object' && ref.resolved) {
    const config = ref.resolved as unknown as Config;
    return { config, job: getJob(config, ref.job) };
  }
  const { config } = loadConfig(deps.configFile);
  return { config, job: getJob(config, typeof ref === 'string' ? ref : ref.job) };
}

/** A pgBackRest job (`kind: pgbackrest`) of the config file as it is now. */
export function pgbackrestContext(deps: ActivityDeps, name: string): { config: Config; job: PgbackrestJob } {
  const { config } = loadConfig(deps.configFile);
  const job = config.pgbackrest[name];
  if (!job) throw new BackupError('JOB_UNKNOWN', `no pgbackrest job named "${name}" in the config (pgbackrest jobs: ${Object.keys(config.pgbackrest).join(', ') || 'none'})`);
  return { config, job };
}

/** The config file as it is now, for a job of either kind (an unknown name is refused). */
export function anyJobConfig(deps: ActivityDeps, name: string): Config {
  const { config } = loadConfig(deps.configFile);
  if (!config.pgbackrest[name]) getJob(config, name);
  return config;
}

/** The notifiers of any job, backupctl's own or a pgBackRest job. */
export function notifiersOfJob(config: Config, name: string): string[] {
  return config.pgbackrest[name]?.notify ?? getJob(config, name).notify;
}

/** The part of the config one run of `jobName` uses (see ResolvedConfig): secret references only, no notifiers. */
export function resolveRun(config: Config, jobName: string): ResolvedConfig {
  const job = getJob(config, jobName);
  const resolved: Config = {
    ...config,
    jobs: { [jobName]: job },
    destinations: Object.fromEntries(job.destinations.map((d) => [d, config.destinations[d]!])),
    notifiers: {},
  };
  return resolved as unknown as ResolvedConfig;
}

/** Details attached to every failure an activity reports, so that the workflow can tell how many attempts were made. */
export interface FailureDetails {
  attempt: number;
  /** The part of a step that does two things (the restore's fetch also unpacks) that failed, when it is not the step's own name. */
  step?: string;
}

const failedSteps = new WeakMap<object, string>();

/** Marks `err` as a failure of `step`, a part of the activity that throws it: the workflow names that step. */
export function failedIn<E>(step: string, err: E): E {
  if (typeof err === 'object' && err !== null) failedSteps.set(err, step);
  return err;
}

/**
 * Runs an activity body and turns its errors into Temporal failures: `BackupError`s keep their stable code as the
 * failure type and become non-retryable when permanent; the message says what failed and where.
 */
export async function runActivity<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const ctx = Context.current();
    if (ctx.cancellationSignal.aborted) throw err;
    const step = typeof err === 'object' && err !== null ? failedSteps.get(err) : undefined;
    const details: FailureDetails = { attempt: activityInfo().attempt, ...(step !== undefined ? { step } : {}) };
    if (err instanceof BackupError) {
      throw ApplicationFailure.create({ message: err.detail, type: err.code, nonRetryable: err.permanent, details: [details], cause: undefined });
    }
    throw ApplicationFailure.create({ message: errorMessage(err), type: (err as Error).name || 'Error', nonRetryable: false, details: [details] });
  }
}

/** Heartbeats progress at most once a second; the SDK delivers cancellation through the heartbeat. */
export function progressReporter(extra: Record<string, unknown> = {}): (bytes: number, more?: Record<string, unknown>) => void {
  const ctx = Context.current();
  let last = 0;
  ctx.heartbeat({ ...extra, bytes: 0 });
  return (bytes: number, more?: Record<string, unknown>) => {
    const now = Date.now();
    if (now - last < 1000) return;
    last = now;
    ctx.heartbeat({ ...extra, ...more, bytes });
  };
}

/** The workflow this activity runs for. */
export function currentRun(): { workflowId: string; runId: string; namespace: string; taskQueue: string } {
  const info = activityInfo();
  if (!info.workflowExecution) throw new Error('backupctl activities run only inside a backup workflow');
  return { ...info.workflowExecution, namespace: info.workflowNamespace ?? 'default', taskQueue: info.taskQueue };
}

/**
 * Options for opening a destination in this activity: a retried attempt gets a new connection instead of the cached
 * one, which may be the connection that stalled or broke in the previous attempt.
 */
export function connectionFor(): { fresh: boolean } {
  return { fresh: activityInfo().attempt > 1 };
}

import { Context, activityInfo } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { getJob, loadConfig } from '../config/load.js';
import type { Config, Job } from '../config/schema.js';
import { BackupError, errorMessage } from '../errors.js';


/** What activities need from the worker: where the config is. Secrets are read from it on demand, never passed in. */
export interface ActivityDeps {
  configFile: string;
}

export function jobContext(deps: ActivityDeps, jobName: string): { config: Config; job: Job } {
  const { config } = loadConfig(deps.configFile);
  return { config, job: getJob(config, jobName) };
}

/** Details attached to every failure an activity reports, so that the workflow can tell how many attempts were made. */
export interface FailureDetails {
  attempt: number;
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
    const details: FailureDetails = { attempt: activityInfo().attempt };
    if (err instanceof BackupError) {
      throw ApplicationFailure.create({ message: err.detail, type: err.code, nonRetryable: err.permanent, details: [details], cause: undefined });
    }
    throw ApplicationFailure.create({ message: errorMessage(err), type: (err as Error).name || 'Error', nonRetryable: false, details: [details] });
  }
}

/** Heartbeats progress at most once a second; the SDK delivers cancellation through the heartbeat. */
export function progressReporter(extra: Record<string, unknown> = {}): (bytes: number) => void {
  const ctx = Context.current();
  let last = 0;
  ctx.heartbeat({ ...extra, bytes: 0 });
  return (bytes: number) => {
    const now = Date.now();
    if (now - last < 1000) return;
    last = now;
    ctx.heartbeat({ ...extra, bytes });
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

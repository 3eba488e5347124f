import { readFileSync } from 'node:fs';
import path from 'node:path';
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

/** The staging folder of one run, on the worker that holds it, keyed by the workflow ID. */
export function stagingDir(config: Config, workflowId: string): string {
  return path.join(config.stateDir, 'staging', workflowId.replace(/[^A-Za-z0-9._:-]/g, '_'));
}

export const ARTIFACT_FILE = 'artifact.tar';

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

let cachedBootId: string | undefined;

/** This machine's boot ID (changes on every boot); 'unknown' where the kernel does not tell. */
export function bootId(): string {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || 'unknown';
    } catch {
      cachedBootId = 'unknown';
    }
  }
  return cachedBootId;
}

/**
 * Staging is not fsynced (the verified remote copy is what must be durable): after a machine restart, staged bytes
 * written before it may be gone. Refuses to go on with staging from another boot; the run fails and notifies, and the
 * next run dumps again.
 */
export function checkStagingBoot(written: string, what: string): void {
  const now = bootId();
  if (written === now || written === 'unknown' || now === 'unknown') return;
  throw new BackupError('STAGING_LOST', `${what} was staged before this worker's machine restarted (boot ${written}, now ${now}); staged bytes may have been lost, so it is not used`, {
    permanent: true, hint: 'run the backup again: it dumps anew',
  });
}

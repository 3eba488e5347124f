import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { deploymentOf } from '../config/load.js';
import { ACQUIRE_SIGNAL, JOB_LOCK_WORKFLOW, lockWorkflowId, type LockRequest } from '../contracts/lock.js';
import { currentRun, jobContext, runActivity, type ActivityDeps } from './context.js';

export interface LockInfo {
  lockWorkflowId: string;
  /** How long a run waits for the lock before it is skipped. */
  waitMs: number;
  notifiers: string[];
  notifyTimeoutMs: number;
  /** `settings.retries`: the preflight (before the plan exists) is retried as often as every other step. */
  retries: number;
  heartbeatTimeoutMs: number;
}

/** Asks the job's lock workflow for the lock, starting it if needed (signal-with-start). */
export function requestLock(deps: ActivityDeps) {
  return (input: { job: string }): Promise<LockInfo> => runActivity(async () => {
    const { config, job } = jobContext(deps, input.job);
    const id = await askForLock(input.job, `lock of job ${input.job}: one run at a time`, deploymentOf(config));
    return { lockWorkflowId: id, waitMs: job.lockWait, notifiers: job.notify, notifyTimeoutMs: config.settings.notifyTimeout, retries: config.settings.retries, heartbeatTimeoutMs: config.settings.heartbeatTimeout };
  });
}

/**
 * Asks the lock workflow named `lock` (on this run's task queue) for the lock on behalf of the calling run, starting
 * it if needed (signal-with-start); returns the lock workflow's ID. Jobs lock by job name, pgBackRest jobs by stanza,
 * both within the config's deployment.
 */
export async function askForLock(lock: string, summary: string, deployment: string): Promise<string> {
  const { workflowId, runId, taskQueue } = currentRun();
  const id = lockWorkflowId(lock, deployment);
  const request: LockRequest = { workflowId, runId };
  await Context.current().client.workflow.signalWithStart(JOB_LOCK_WORKFLOW, {
    workflowId: id, taskQueue, args: [{ job: lock }], signal: ACQUIRE_SIGNAL, signalArgs: [request], staticSummary: summary,
  });
  return id;
}

/**
 * Whether a workflow run is still running (the lock frees a holder that ended without releasing). A run the server
 * does not know (NotFound: never existed, or its history is gone after the namespace's retention) is not running.
 */
export function isRunning() {
  return async (input: LockRequest): Promise<boolean> => {
    try {
      const d = await Context.current().client.workflow.getHandle(input.workflowId, input.runId).describe();
      return d.status.name === 'RUNNING';
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  };
}

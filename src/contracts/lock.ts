/** The job lock workflow: its name, signals and ID, and what a run asks it for. */

export const JOB_LOCK_WORKFLOW = 'jobLockWorkflow';
export const ACQUIRE_SIGNAL = 'acquire';
export const RELEASE_SIGNAL = 'release';
export const LOCK_GRANTED_SIGNAL = 'lockGranted';

/**
 * One lock workflow per job serialises its runs, whatever started them. Its ID includes the config's deployment
 * (`temporal.deployment`): the same job name in another config is another job, with its own lock.
 */
export function lockWorkflowId(job: string, deployment: string): string {
  return `backup-lock:${deployment}:${job}`;
}

export interface LockRequest {
  workflowId: string;
  runId: string;
}

/** The job lock workflow: its name, signals and ID, and what a run asks it for. */

export const JOB_LOCK_WORKFLOW = 'jobLockWorkflow';
export const ACQUIRE_SIGNAL = 'acquire';
export const RELEASE_SIGNAL = 'release';
export const LOCK_GRANTED_SIGNAL = 'lockGranted';

/**
 * One lock workflow per job serialises its runs, whatever started them. Its ID includes the job's task queue: the
 * same job name in another config (another host, another queue) is another job.
 */
export function lockWorkflowId(job: string, taskQueue: string): string {
  return `backup-lock-${taskQueue}-${job}`;
}

export interface LockRequest {
  workflowId: string;
  runId: string;
}

import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { BACKUP_WORKFLOW, PROGRESS_QUERY, backupWorkflowId, type BackupResult, type BackupType } from '../../src/contracts/index.js';
import { waitFor } from './util.js';

// "Start a backup and await its outcome", for every test tier (workflow, e2e, faults): one way to start
// backupWorkflow and one shape for how it ended.

export interface BackupStart {
  /** The task queue of the job's worker. */
  taskQueue: string;
  /** Default `app` (the job `writeJob` writes). */
  job?: string;
  /** Sent only when given (the workflow's default is a full backup). */
  type?: BackupType;
  /** The run's slot, sent as an ISO time; without it the workflow takes its schedule or start time. */
  slot?: Date;
  /**
   * Default: the ID a schedule of the deployment gives this job, type and slot (`backupWorkflowId`). Give it when the
   * test's run must meet a run the CLI or a schedule starts (JobSetup.deployment).
   */
  deployment?: string;
  /** Default: the ID a schedule gives this job, type and slot (`backupWorkflowId`) in `deployment` (default `test`). */
  workflowId?: string;
}

/** How a failed or cancelled run ended: its failure's type (the stable error code), message, and the step named in it. */
export interface BackupFailure {
  code: string;
  message: string;
  /** The step the message names ("failed in the upload step", "cancelled during the dump step"), if any. */
  step?: string;
}

export type BackupOutcome =
  | { status: 'completed'; handle: WorkflowHandle; result: BackupResult }
  | { status: 'failed' | 'cancelled'; handle: WorkflowHandle; error: WorkflowFailedError; failure: BackupFailure };

/** Starts backupWorkflow on the job's task queue (some worker must serve it). */
export function startBackup(client: Client, start: BackupStart): Promise<WorkflowHandle> {
  const job = start.job ?? 'app';
  const workflowId = start.workflowId ?? (start.slot ? backupWorkflowId(start.deployment ?? 'test', job, start.type ?? 'full', start.slot) : undefined);
  if (!workflowId) throw new Error('startBackup: give a slot or a workflowId');
  const input = { job, ...(start.type ? { type: start.type } : {}), ...(start.slot ? { slot: start.slot.toISOString() } : {}) };
  return client.workflow.start(BACKUP_WORKFLOW, { taskQueue: start.taskQueue, workflowId, args: [input] });
}

/**
 * Waits for a run's end. A run that completed (succeeded, with warnings, or skipped: see `result.status`) is
 * `completed`; a run that failed or was cancelled carries the WorkflowFailedError and its facts. Any other error
 * (the client lost its server) is thrown.
 */
export async function awaitBackup(handle: WorkflowHandle): Promise<BackupOutcome> {
  try {
    return { status: 'completed', handle, result: (await handle.result()) as BackupResult };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const cause = err.cause;
    const message = cause?.message ?? err.message;
    const cancelled = cause instanceof CancelledFailure;
    const code = cancelled ? 'CANCELLED' : cause instanceof ApplicationFailure ? cause.type ?? 'Error' : cause?.name ?? 'Error';
    const step = /(?:failed in|cancelled during) the (\w+) step/.exec(message)?.[1];
    return { status: cancelled ? 'cancelled' : 'failed', handle, error: err, failure: { code, message, ...(step ? { step } : {}) } };
  }
}

/** Starts a run and waits for its end. */
export async function runBackup(client: Client, start: BackupStart): Promise<BackupOutcome> {
  return awaitBackup(await startBackup(client, start));
}

/** The result of a run that must have completed; a run that failed throws its WorkflowFailedError. */
export function resultOf(outcome: BackupOutcome): BackupResult {
  if (outcome.status !== 'completed') throw outcome.error;
  return outcome.result;
}

/** Like `client.workflow.execute`: the run's result, or a rejection with its WorkflowFailedError. */
export async function backupResult(client: Client, start: BackupStart): Promise<BackupResult> {
  return resultOf(await runBackup(client, start));
}

/** The failure of a run that must have failed (or been cancelled); a run that completed fails the test. */
export function failureOf(outcome: BackupOutcome): WorkflowFailedError {
  if (outcome.status === 'completed') throw new Error(`expected the run to fail; it completed (${outcome.result.status})`);
  return outcome.error;
}

/**
 * Waits until the run is in `step` (its progress query), e.g. 'upload': the upload to the first destination starts
 * beside the dump, so its temporary file alone no longer says that the dump is over.
 */
export async function waitForStep(handle: WorkflowHandle, step: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => (await handle.query<{ step: string }>(PROGRESS_QUERY)).step === step, { timeoutMs, intervalMs: 50, description: `the run to reach the ${step} step` });
}

import { ActivityFailure, ApplicationFailure, CancelledFailure, TimeoutFailure, isCancellation } from '@temporalio/workflow';
import type { FailureDetails } from '../activities/context.js';

export interface FailureFacts {
  code: string;
  error: string;
  attempts: number;
}

/**
 * Failure facts for notifications and reports (backup, restore and drill workflows): the stable code, the message,
 * and how many attempts were made (`maxAttempts` when the retries ran out).
 */
export function describeFailure(err: unknown, maxAttempts = 1): FailureFacts {
  let e: unknown = err;
  let attempts = 1;
  if (e instanceof ActivityFailure) {
    attempts = e.retryState === 'MAXIMUM_ATTEMPTS_REACHED' || e.retryState === 'TIMEOUT' ? maxAttempts : 1;
    e = e.cause ?? e;
  }
  if (e instanceof ApplicationFailure) {
    const details = e.details?.[0] as FailureDetails | undefined;
    if (details?.attempt) attempts = details.attempt;
    return { code: e.type ?? 'Error', error: e.message, attempts };
  }
  if (e instanceof TimeoutFailure) {
    const what = e.timeoutType === 'HEARTBEAT' ? 'no progress reported within the heartbeat timeout (stalled)' : `timed out (${e.timeoutType})`;
    return { code: 'TIMEOUT', error: what, attempts };
  }
  return { code: 'Error', error: err instanceof Error ? err.message : String(err), attempts };
}

/**
 * What a failed or cancelled run ends with, after its compensation: a cancellation stays one (an external cancel
 * request ends the run as Canceled, a `cancel` signal ends it failed with a CancelledFailure); any other error becomes a
 * non-retryable failure typed with its code that names the step (and the attempts, when more than one was made).
 */
export function endOfRun(err: unknown, subject: string, step: string, failure: Pick<FailureFacts, 'code' | 'error'>, attempts = 1): Error {
  if (isCancellation(err)) return err instanceof CancelledFailure ? err : new CancelledFailure(`${subject} was cancelled during the ${step} step`);
  const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
  return ApplicationFailure.create({ message: `${subject} failed in the ${step} step${tries}: ${failure.error}`, type: failure.code, nonRetryable: true });
}

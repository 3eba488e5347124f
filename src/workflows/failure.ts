import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';
import type { FailureDetails } from '../activities/context.js';

/**
 * Failure facts for notifications and reports (backup, restore and drill workflows): the stable code, the message,
 * and how many attempts were made (`maxAttempts` when the retries ran out).
 */
export function describeFailure(err: unknown, maxAttempts = 1): { code: string; error: string; attempts: number } {
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

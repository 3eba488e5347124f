import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';

/** The stable code and message of an activity's failure (restore and drill workflows). */
export function failureOf(err: unknown): { code: string; error: string } {
  let e: unknown = err;
  if (e instanceof ActivityFailure) e = e.cause ?? e;
  if (e instanceof ApplicationFailure) return { code: e.type ?? 'Error', error: e.message };
  if (e instanceof TimeoutFailure) return { code: 'TIMEOUT', error: e.timeoutType === 'HEARTBEAT' ? 'no progress reported within the heartbeat timeout (stalled)' : `timed out (${e.timeoutType})` };
  return { code: 'Error', error: err instanceof Error ? err.message : String(err) };
}

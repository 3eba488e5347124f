import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
import { PERMANENT_CODES } from '../errors.js';
import type { Activities } from '../activities/index.js';

// The activity option sets of the backup and restore workflows, declared once. Each function returns the activity
// proxy for one set; the settings that vary per job (retries, heartbeat timeout, notify timeout) are its arguments.

/** Bounded retries with backoff; permanent error codes are never retried. */
export function retry(maximumAttempts: number) {
  return { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts, nonRetryableErrorTypes: PERMANENT_CODES };
}

/** Retries without an attempt bound, for as long as the schedule-to-close budget allows (notifications, late cleanup). */
const patientRetry = () => ({ initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1m' });

/** Short steps (lock request, preflight, size check, cleanup, notifier lookup): 5 minutes each attempt. */
export function shortSteps(retries = 5) {
  return proxyActivities<Activities>({ startToCloseTimeout: '5m', retry: retry(retries) });
}

/** Long steps that heartbeat (dump, archive, upload, checksum, verify, finalize; fetch, unpack, load): up to 24 h. */
export function longSteps(settings: { retries: number; heartbeatTimeoutMs: number }) {
  return proxyActivities<Activities>({ startToCloseTimeout: '24h', heartbeatTimeout: settings.heartbeatTimeoutMs, retry: retry(settings.retries) });
}

/**
 * The upload that follows the dump (started beside it): like the long steps, but a cancelled one is waited for until
 * it has stopped, so that the compensation never removes its temporary file while it still writes.
 */
export function followSteps(settings: { retries: number; heartbeatTimeoutMs: number }) {
  return proxyActivities<Activities>({
    startToCloseTimeout: '24h', heartbeatTimeout: settings.heartbeatTimeoutMs, retry: retry(settings.retries),
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });
}

/**
 * Notifications: retried for the whole `budgetMs` (the job's notifyTimeout), 2 minutes each attempt. With
 * `heartbeatTimeoutMs`, a worker that dies mid-send is noticed within it, not after the 2 minutes.
 */
export function notifySteps(budgetMs: number, heartbeatTimeoutMs?: number) {
  return proxyActivities<Activities>({
    scheduleToCloseTimeout: budgetMs, startToCloseTimeout: '2m', ...(heartbeatTimeoutMs === undefined ? {} : { heartbeatTimeout: heartbeatTimeoutMs }),
    retry: patientRetry(),
  });
}

/** A step retried for as long as `budgetMs` allows (the removal of temporary files a failed run left behind). */
export function patientSteps(budgetMs: number) {
  return proxyActivities<Activities>({ scheduleToCloseTimeout: budgetMs, startToCloseTimeout: '5m', retry: patientRetry() });
}

/** Retention after a successful backup. */
export function pruneSteps() {
  return proxyActivities<Activities>({ startToCloseTimeout: '1h', heartbeatTimeout: '2m', retry: retry(3) });
}

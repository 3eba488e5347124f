import { log, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { FreshnessReport } from '../activities/monitor.js';
import type { BackupEvent } from '../contracts/events.js';
import { alertStateOf, planAlerts, type AlertState } from '../contracts/freshness.js';
import { describeFailure } from './failure.js';
import { notifySteps } from './proxies.js';

const quick = proxyActivities<Activities>({ startToCloseTimeout: '1m', retry: { maximumAttempts: 3, initialInterval: '5s' } });
const check = proxyActivities<Activities>({ startToCloseTimeout: '10m', heartbeatTimeout: '1m', retry: { maximumAttempts: 3, initialInterval: '10s' } });
const CHECK_ATTEMPTS = 3;

export interface FreshnessInput {
  /** Send the alerts that are due (default true). */
  notify?: boolean;
  /** The alert state to continue from; default: the previous scheduled check's result (Temporal passes it on). */
  previous?: AlertState;
}

/**
 * The scheduled freshness check: silence is an alarm. Each job is checked on its own (an activity per job, with
 * heartbeats), so one job's error never stops the others' alerts: it becomes an alert of its own. A problem is
 * alerted when it appears, then again after 1 h, 4 h and then daily while it lasts (the state travels from one
 * scheduled check to the next in its result); an alert's ID is stable per job, problems and day, so a resend is the
 * same message.
 */
export async function freshnessWorkflow(input: FreshnessInput = {}): Promise<FreshnessReport> {
  const now = new Date();
  const checkedAt = now.toISOString();
  const previous = input.previous ?? alertStateOf(workflowInfo().lastResult);
  const { jobs } = await quick.freshnessJobs();
  const report: FreshnessReport = { checkedAt, jobs: [], failed: [], notified: [], orphans: [], alerts: {} };
  for (const { job } of jobs) {
    try {
      const r = await check.checkJobFreshness({ job });
      report.jobs.push(r.status);
      report.orphans.push(...r.orphans);
    } catch (err) {
      const error = describeFailure(err, CHECK_ATTEMPTS).error;
      log.error('freshness check of a job failed', { job, error });
      report.failed.push({ job, error });
    }
  }
  const { due, state } = planAlerts([
    ...report.jobs.map((s) => ({ job: s.job, problems: s.problems })),
    ...report.failed.map((f) => ({ job: f.job, problems: [`the freshness check could not check this job: ${f.error}`] })),
  ], previous, now, report.failed.map((f) => f.job));
  report.alerts = state;
  if (input.notify === false) return report;
  const send = notifySteps(10 * 60_000);
  for (const alert of due) {
    const event: BackupEvent = { kind: 'alert', job: alert.job, problems: alert.problems, checkedAt, alertId: alert.alertId };
    for (const notifier of jobs.find((j) => j.job === alert.job)?.notifiers ?? []) {
      try {
        const r = await send.notify({ job: alert.job, notifier, event });
        if (r.sent) report.notified.push(`${alert.job}:${notifier}`);
      } catch (err) {
        log.error('alert notification failed', { job: alert.job, notifier, error: describeFailure(err, 1).error });
      }
    }
  }
  return report;
}

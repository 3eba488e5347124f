import { ApplicationFailure, log, setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import type { PgbackrestDrillReport } from '../contracts/pgbackrest.js';
import { describeFailure } from './failure.js';
import { longSteps, notifySteps, shortSteps } from './proxies.js';

const quick = shortSteps(3);

/**
 * A restore drill of a pgBackRest job: restores the stanza's newest backup into a scratch data directory, starts a
 * throwaway postgres on it, compares the job's `drill.check` query with what the primary returned just after that
 * backup, and reports the restore time; the scratch server and data are always removed. A failed drill is notified
 * (a passed one with `drill.notifyOnSuccess`) and ends the workflow failed.
 */
export async function pgbackrestDrillWorkflow(input: { job: string }): Promise<PgbackrestDrillReport> {
  const info = workflowInfo();
  if (typeof input !== 'object' || input === null || typeof input.job !== 'string') throw ApplicationFailure.nonRetryable('input must be {"job": NAME}', 'CONFIG_INVALID');
  const job = input.job;
  const startedAt = new Date().toISOString();
  const details = (text: string) => setCurrentDetails(`pgBackRest restore drill of **${job}**: ${text}`);
  const report: PgbackrestDrillReport = { format: 'backupctl-pgbackrest-drill/1', job, stanza: '', workflowId: info.workflowId, ok: false, startedAt, finishedAt: startedAt, checks: [], problems: [] };
  let notify = { notifiers: [] as string[], notifyOnSuccess: false, notifyTimeoutMs: 30 * 60_000 };
  try {
    details('choosing the newest backup');
    const plan = await quick.pgbackrestDrillPlan({ job });
    notify = plan;
    report.stanza = plan.stanza;
    report.backup = { label: plan.label, type: plan.type, target: plan.target };
    details(`restoring ${plan.label}`);
    const outcome = await longSteps({ retries: 1, heartbeatTimeoutMs: 60_000 }).pgbackrestDrill({ job, workflowId: info.workflowId, plan });
    report.checks.push(...outcome.checks);
    report.problems.push(...outcome.problems);
    if (outcome.restoreMs !== undefined) report.restoreMs = outcome.restoreMs;
  } catch (err) {
    const f = describeFailure(err);
    report.problems.push(`${f.error} (${f.code})`);
    notify.notifiers = notify.notifiers.length ? notify.notifiers : await quick.notifiersOf({ job }).catch(() => [] as string[]);
  }
  report.ok = report.problems.length === 0;
  report.finishedAt = new Date().toISOString();
  if (!report.ok || notify.notifyOnSuccess) {
    const n = notifySteps(notify.notifyTimeoutMs);
    await Promise.all(notify.notifiers.map((notifier) => n.notify({ job, notifier, event: { kind: 'drill', report, runId: info.runId } })
      .catch((err: unknown) => { log.error('notification failed', { notifier, error: describeFailure(err).error }); })));
  }
  details(report.ok ? `passed; restore time ${Math.round((report.restoreMs ?? 0) / 1000)} s` : `FAILED: ${report.problems[0]}`);
  if (!report.ok) throw ApplicationFailure.create({ message: `pgBackRest restore drill of ${job} failed: ${report.problems.join('; ')}`, type: 'DRILL_FAILED', nonRetryable: true, details: [report] });
  return report;
}

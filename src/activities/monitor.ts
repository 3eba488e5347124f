import { Context, log } from '@temporalio/activity';
import { loadConfig } from '../config/load.js';
import type { AlertState } from '../contracts/freshness.js';
import type { OrphanReport } from '../contracts/prune.js';
import { anyJobStatus } from '../monitor/pgbackrest.js';
import type { JobStatus } from '../monitor/status.js';
import { notifiersOfJob, runActivity, type ActivityDeps } from './context.js';
import { sweepOrphans } from './prune.js';

export interface FreshnessReport {
  checkedAt: string;
  jobs: JobStatus[];
  /** Jobs the check could not judge (their check failed after its retries): alerted as a problem of their own. */
  failed: { job: string; error: string }[];
  /** `<job>:<notifier>` for every alert sent. */
  notified: string[];
  /** The orphan sweep of every job's destinations (temporary files of no running workflow, past the grace period). */
  orphans: OrphanReport[];
  /** Problems alerted and still present, carried to the next check (its backoff: 1 h, 4 h, then daily). */
  alerts: AlertState;
}

/** The jobs the freshness check judges (both kinds), each with the notifiers its alerts go to (the job's and monitoring.notify). */
export function freshnessJobs(deps: ActivityDeps) {
  return (): Promise<{ jobs: { job: string; notifiers: string[] }[] }> => runActivity(async () => {
    const { config } = loadConfig(deps.configFile);
    const names = [...Object.keys(config.jobs), ...Object.keys(config.pgbackrest)];
    return { jobs: names.map((job) => ({ job, notifiers: [...new Set([...notifiersOfJob(config, job), ...config.monitoring.notify])] })) };
  });
}

/**
 * One job's health for the freshness check: the newest backup per type against its threshold, its schedules, its
 * recent runs, its last drill, a queue nobody polls; and the orphan sweep of its destinations. Heartbeats while it
 * reads (destinations, the Temporal server), so a hung read is retried within the heartbeat timeout.
 */
export function checkJobFreshness(deps: ActivityDeps) {
  return (input: { job: string }): Promise<{ status: JobStatus; orphans: OrphanReport[] }> => runActivity(async () => {
    const { config } = loadConfig(deps.configFile);
    const ctx = Context.current();
    ctx.heartbeat({ job: input.job });
    const timer = setInterval(() => ctx.heartbeat({ job: input.job }), 5000);
    try {
      const status = await anyJobStatus(config, ctx.client, input.job);
      // pgBackRest jobs have no destinations of backupctl's own to sweep.
      if (!config.jobs[input.job]) return { status, orphans: [] };
      const swept = await sweepOrphans(config, input.job, ctx.client, { dryRun: false });
      for (const o of swept.orphans.filter((x) => x.action === 'removed')) log.info('orphaned temporary file removed', { ...o });
      status.problems.push(...swept.problems);
      return { status, orphans: swept.orphans };
    } finally {
      clearInterval(timer);
    }
  });
}

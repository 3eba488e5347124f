import { Context, log } from '@temporalio/activity';
import { loadConfig } from '../config/load.js';
import type { BackupEvent } from '../contracts/events.js';
import type { OrphanReport } from '../contracts/prune.js';
import { errorMessage } from '../errors.js';
import { anyJobStatus } from '../monitor/pgbackrest.js';
import type { JobStatus } from '../monitor/status.js';
import { createNotifier } from '../notifiers/index.js';
import { renderMessage } from '../notifiers/message.js';
import { currentRun, notifiersOfJob, runActivity, type ActivityDeps } from './context.js';
import { sweepOrphans } from './prune.js';

export interface FreshnessReport {
  checkedAt: string;
  jobs: JobStatus[];
  notified: string[];
  /** The orphan sweep of every job's destinations (temporary files of no running workflow, past the grace period). */
  orphans: OrphanReport[];
}

/**
 * Silence is an alarm: for every job, the newest finalized backup per type must be younger than its threshold,
 * every declared schedule must exist and run, and runs must not keep failing. Problems are notified through the
 * job's notifiers.
 */
export function checkFreshness(deps: ActivityDeps) {
  return (input: { notify: boolean }): Promise<FreshnessReport> => runActivity(async () => {
    const { config } = loadConfig(deps.configFile);
    const client = Context.current().client;
    const checkedAt = new Date().toISOString();
    const jobs: JobStatus[] = [];
    const notified: string[] = [];
    const orphans: OrphanReport[] = [];
    for (const name of [...Object.keys(config.jobs), ...Object.keys(config.pgbackrest)]) {
      Context.current().heartbeat({ job: name });
      const status = await anyJobStatus(config, client, name);
      jobs.push(status);
      if (config.jobs[name]) {
        // pgBackRest jobs have no destinations of backupctl's own to sweep.
        const swept = await sweepOrphans(config, name, client, { dryRun: false });
        orphans.push(...swept.orphans);
        for (const o of swept.orphans.filter((x) => x.action === 'removed')) log.info('orphaned temporary file removed', { ...o });
        status.problems.push(...swept.problems);
      }
      if (!input.notify || status.problems.length === 0) continue;
      const event: BackupEvent = { kind: 'alert', job: name, problems: status.problems, checkedAt };
      const message = renderMessage(event, { uiUrl: config.temporal.uiUrl, namespace: currentRun().namespace });
      for (const n of new Set([...notifiersOfJob(config, name), ...config.monitoring.notify])) {
        try {
          const notifier = createNotifier(config, n);
          if (!notifier.wants(event)) continue;
          await notifier.send(event, message);
          notified.push(`${name}:${n}`);
        } catch (err) {
          log.error('alert notification failed', { job: name, notifier: n, error: errorMessage(err) });
        }
      }
    }
    return { checkedAt, jobs, notified, orphans };
  });
}

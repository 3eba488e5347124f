import { taskQueueOf } from '../config/load.js';
import { BackupError } from '../errors.js';
import { ensureOk, runPgbackrest } from '../pgbackrest/cli.js';
import { readInfo } from '../pgbackrest/repo.js';
import { currentRun, pgbackrestContext, runActivity, type ActivityDeps } from './context.js';

export interface PgbackrestPlan {
  stanza: string;
  notifiers: string[];
  notifyTimeoutMs: number;
  retries: number;
  heartbeatTimeoutMs: number;
  /** The labels the repository held before this run's backup (the new one is the label not among them). */
  labels: string[];
}

/**
 * `pgbackrest check` before the backup: the stanza exists, the primary answers and a WAL switch gets archived. A broken
 * `archive_command` fails here, with pgBackRest's own message.
 */
export function pgbackrestPreflight(deps: ActivityDeps) {
  return (input: { job: string }): Promise<PgbackrestPlan> => runActivity(async () => {
    const { config, job } = pgbackrestContext(deps, input.job);
    const { taskQueue } = currentRun();
    if (taskQueue !== taskQueueOf(config, job)) {
      throw new BackupError('CONFIG_INVALID', `job "${input.job}" runs on task queue "${taskQueueOf(config, job)}", but this run was started on "${taskQueue}"`);
    }
    ensureOk(await runPgbackrest(job, 'check', [], {}), `pgbackrest check of stanza "${job.stanza}"`, 'PGBACKREST_CHECK_FAILED',
      'fix what pgBackRest names (archive_command, the stanza, the repository) and run `pgbackrest check` by hand');
    const info = await readInfo(job);
    return {
      stanza: job.stanza, notifiers: job.notify, notifyTimeoutMs: config.settings.notifyTimeout, retries: config.settings.retries,
      heartbeatTimeoutMs: config.settings.heartbeatTimeout, labels: info.backup.map((b) => b.label),
    };
  });
}

import type { RestorePlan } from '../contracts/restore.js';
import { withDestination } from '../destinations/index.js';
import { BackupError, errorMessage } from '../errors.js';
import { catalogDestination } from '../repository/catalog.js';
import { pickBackup, resolveChain } from '../restore/chain.js';
import { checkChainComponents } from '../restore/components.js';
import { resolveTargets } from '../restore/targets.js';
import { jobContext, runActivity, type ActivityDeps } from './context.js';
import { checkTarget } from './unpack.js';

export interface PlanRestoreInput {
  job: string;
  backup?: string;
  at?: string;
  destination?: string;
  intoDatabases?: Record<string, string>;
  /** The restore target, refused early when it holds anything (checked again before the rename). */
  to?: string;
}

/**
 * Picks the backup to restore (by run, or the newest at or before a time, on the named destination or the first of the
 * job's destinations that has one) and resolves its chain, base first. Reads manifests only.
 */
export function planRestore(deps: ActivityDeps) {
  return (input: PlanRestoreInput): Promise<RestorePlan> => runActivity(async () => {
    const { config, job } = jobContext(deps, input.job);
    if (input.destination !== undefined && !job.destinations.includes(input.destination)) {
      throw new BackupError('CONFIG_INVALID', `job ${input.job} has no destination "${input.destination}" (it has ${job.destinations.join(', ')})`);
    }
    if (input.to !== undefined) await checkTarget(input.to);
    const names = input.destination ? [input.destination] : job.destinations;
    const problems: string[] = [];
    for (const name of names) {
      try {
        return await withDestination(config, name, async (d) => {
          // The finalized backups, as `list` sees them: an artifact with its readable manifest, sizes matching.
          const stored = (await catalogDestination(d, input.job)).backups;
          const picked = pickBackup(stored, input, input.job);
          const chain = resolveChain(picked, stored);
          // Every component must be one of the job's sources, its member and restore path what that source writes.
          checkChainComponents(input.job, job, chain);
          return {
            job: input.job, destination: name, chain, targets: resolveTargets(input.intoDatabases ?? {}, chain),
            retries: config.settings.retries, heartbeatTimeoutMs: config.settings.heartbeatTimeout,
          };
        });
      } catch (err) {
        // The only destination asked for, or the last one: its error is the answer.
        if (names.length === 1) throw err;
        problems.push(`${name}: ${errorMessage(err).split('\n')[0]}`);
        if (err instanceof BackupError && !['RESTORE_NOT_FOUND', 'DESTINATION_AUTH', 'HOST_KEY_MISMATCH', 'DESTINATION_UNREACHABLE', 'DESTINATION_IO'].includes(err.code)) throw err;
      }
    }
    throw new BackupError('RESTORE_NOT_FOUND', `no destination of job ${input.job} has a matching backup: ${problems.join('; ')}`);
  });
}

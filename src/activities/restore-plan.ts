import type { RestoreArtifact, RestorePlan } from '../contracts/restore.js';
import { withDestination } from '../destinations/index.js';
import { BackupError, errorMessage } from '../errors.js';
import { catalogDestination } from '../repository/catalog.js';
import { pickBackup, resolveChain } from '../restore/chain.js';
import { checkChainComponents } from '../restore/components.js';
import { checkIdentity } from '../restore/decrypt.js';
import { resolveTargets } from '../restore/targets.js';
import { trustOf } from '../state/keys.js';
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
  /** Also restore backups whose manifest signature does not verify (`restore --trust-unsigned`). */
  trustUnsigned?: boolean;
  /** The age identity file's path on the worker: an encrypted chain without one is refused before anything is fetched. */
  identity?: string;
}

/**
 * Picks the backup to restore (by run, or the newest at or before a time, on the named destination or the first of the
 * job's destinations that has one) and resolves its chain, base first. Reads manifests only. Only backups whose
 * manifest signature verifies are taken (MANIFEST_UNVERIFIED when the backup asked for has none that does), unless
 * `trustUnsigned`: then the chain's unverified artifacts say why.
 */
export function planRestore(deps: ActivityDeps) {
  return (input: PlanRestoreInput): Promise<RestorePlan> => runActivity(async () => {
    const { config, job } = jobContext(deps, input.job);
    if (input.destination !== undefined && !job.destinations.includes(input.destination)) {
      throw new BackupError('CONFIG_INVALID', `job ${input.job} has no destination "${input.destination}" (it has ${job.destinations.join(', ')})`);
    }
    if (input.to !== undefined) await checkTarget(input.to);
    const trust = trustOf(config);
    const names = input.destination ? [input.destination] : job.destinations;
    const problems: string[] = [];
    let unverified: BackupError | undefined;
    for (const name of names) {
      try {
        return await withDestination(config, name, async (d) => {
          // The finalized backups, as `list` sees them: an artifact with its readable manifest, sizes matching.
          const cat = await catalogDestination(d, input.job, trust);
          const all = [...cat.backups, ...cat.unverified];
          const why = new Map(cat.unverified.map((u) => [u.path, u.reason]));
          const planned = (stored: typeof all) => resolveChain(pickBackup(stored, input, input.job), stored);
          let chain;
          try {
            chain = planned(input.trustUnsigned ? all : cat.backups);
          } catch (err) {
            if (input.trustUnsigned || !(err instanceof BackupError) || cat.unverified.length === 0) throw err;
            // Would an unverified manifest have answered? Then say that, not "not found".
            let would: RestoreArtifact[] | undefined;
            try {
              would = planned(all);
            } catch {
              throw err;
            }
            const bad = would.filter((a) => why.has(a.path));
            if (bad.length === 0) throw err;
            throw new BackupError('MANIFEST_UNVERIFIED', `${bad.map((a) => `${a.path} on destination "${name}"`).join(', ')}: the manifest's signature does not verify (${why.get(bad[0]!.path)}); it is not treated as a backup of this deployment and nothing was restored`, {
              hint: 'if it is your own backup and the signing key is lost (or it predates signing), restore it with --trust-unsigned (README, "Signed manifests")',
            });
          }
          // Every component must be one of the job's sources, its member and restore path what that source writes.
          checkChainComponents(input.job, job, chain);
          // Encrypted: no download without an identity that can be read (which one opens it, age tells at unpack).
          await checkIdentity(chain, input.identity);
          chain = chain.map((a) => (why.has(a.path) ? { ...a, unverified: why.get(a.path)! } : a));
          return {
            job: input.job, destination: name, chain, targets: resolveTargets(input.intoDatabases ?? {}, chain),
            retries: config.settings.retries, heartbeatTimeoutMs: config.settings.heartbeatTimeout,
          };
        });
      } catch (err) {
        // The only destination asked for, or the last one: its error is the answer.
        if (names.length === 1) throw err;
        problems.push(`${name}: ${errorMessage(err).split('\n')[0]}`);
        if (err instanceof BackupError && err.code === 'MANIFEST_UNVERIFIED') unverified = err;
        if (err instanceof BackupError && !['RESTORE_NOT_FOUND', 'MANIFEST_UNVERIFIED', 'DESTINATION_AUTH', 'HOST_KEY_MISMATCH', 'DESTINATION_UNREACHABLE', 'DESTINATION_IO'].includes(err.code)) throw err;
      }
    }
    if (unverified) throw new BackupError('MANIFEST_UNVERIFIED', `no destination of job ${input.job} has a matching backup with a verified manifest: ${problems.join('; ')}`, { hint: unverified.hint });
    throw new BackupError('RESTORE_NOT_FOUND', `no destination of job ${input.job} has a matching backup: ${problems.join('; ')}`);
  });
}

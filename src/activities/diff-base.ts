import type { Config, Job } from '../config/schema.js';
import { withDestination } from '../destinations/index.js';
import { errorMessage } from '../errors.js';
import { newestOnDestination } from '../monitor.js';
import type { ManifestBase } from '../shared.js';
import { hasSnapshots } from '../snapshots.js';

/**
 * The base of a diff run: the newest finalized full of the job on its first destination (any tier), which must also
 * be finalized on every destination the diff goes to (a restore there needs it), and whose GNU tar snapshot of every
 * files source this worker holds. Otherwise `reason` says why the diff has to be a full.
 */
export async function chooseBase(config: Config, jobName: string, job: Job, destinations: string[]): Promise<{ base?: ManifestBase; reason?: string }> {
  const first = job.destinations[0]!;
  let newest;
  try {
    newest = (await withDestination(config, first, (d) => newestOnDestination(d, jobName, ['full']))).full;
  } catch (err) {
    return { reason: `destination "${first}" could not be searched for a full backup: ${errorMessage(err).split('\n')[0]}` };
  }
  if (!newest) return { reason: `no finalized full backup of job "${jobName}" on destination "${first}"` };
  const base: ManifestBase = { workflowId: newest.workflowId, slot: newest.slot, path: newest.path, size: newest.size, sha256: newest.sha256 };
  for (const name of destinations) {
    if (name === first) continue;
    const there = await withDestination(config, name, (d) => d.stat(`${base.path}.manifest.json`));
    if (!there) return { reason: `the newest full (${base.path}) is not finalized on destination "${name}"` };
  }
  const files = job.sources.filter((s) => s.type === 'files').map((s) => s.name);
  if (!(await hasSnapshots(config, jobName, base.workflowId, files))) {
    return { reason: `this worker holds no GNU tar snapshot of the newest full (${base.path}) for every files source (${files.join(', ')}): it was made elsewhere, before differential backups existed, or the worker's state was lost` };
  }
  return { base };
}

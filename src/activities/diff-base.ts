import type { Config, Job } from '../config/schema.js';
import type { ManifestBase } from '../contracts/manifest.js';
import { withDestination } from '../destinations/index.js';
import { BackupError } from '../errors.js';
import { newestOnDestination } from '../repository/catalog.js';
import { readManifest } from '../repository/manifest.js';
import { trustOf } from '../state/keys.js';
import { hasSnapshots, recoverSnapshots } from '../state/snapshots.js';
import { sourcePlugin } from '../sources/index.js';

/**
 * The base of a diff run: the newest finalized full of the job on its first destination (any tier) whose manifest is
 * signed by a trusted key, which must also be finalized (and signed) on every destination the diff goes to (a restore there needs it), and whose GNU tar snapshot of every
 * files source this worker holds (or takes from the full's artifact). Otherwise `reason` says why the diff has to be a
 * full. Errors reading a destination are thrown (preflight is retried), never turned into a full.
 */
export async function chooseBase(config: Config, jobName: string, job: Job, destinations: string[]): Promise<{ base?: ManifestBase; reason?: string; recovered?: string }> {
  const first = job.destinations[0]!;
  // A destination that cannot be read fails preflight (and is retried): a network glitch must not turn a diff into a full.
  const trust = trustOf(config);
  const newest = (await withDestination(config, first, (d) => newestOnDestination(d, jobName, ['full'], trust))).full;
  if (!newest) return { reason: `no finalized full backup of job "${jobName}" on destination "${first}"` };
  const base: ManifestBase = { workflowId: newest.workflowId, slot: newest.slot, path: newest.path, size: newest.size, sha256: newest.sha256 };
  for (const name of destinations) {
    if (name === first) continue;
    const there = await withDestination(config, name, async (d) => {
      // The artifact itself, with its size, not only its manifest: a manifest alone is no backup to restore there.
      if ((await d.stat(base.path))?.size !== base.size) return false;
      if (!(await d.stat(`${base.path}.manifest.json`))) return false;
      try {
        const read = await readManifest(d, `${base.path}.manifest.json`, trust);
        return read.unverified === undefined && read.manifest.artifact?.sha256 === base.sha256;
      } catch (err) {
        if (err instanceof BackupError) throw err;
        return false;
      }
    });
    if (!there) return { reason: `the newest full (${base.path}) is not finalized on destination "${name}"` };
  }
  // The sources that dump against their base full's GNU tar snapshot.
  const files = job.sources.filter((s) => sourcePlugin(s.type).incremental).map((s) => s.name);
  if (!(await hasSnapshots(config, jobName, base.workflowId, files))) {
    // This worker's state is lost (or the full was made elsewhere): take the snapshots from the full's artifact.
    const why = await withDestination(config, first, async (d) => {
      const read = await readManifest(d, `${base.path}.manifest.json`, trust);
      if (read.unverified !== undefined) return `its manifest is not signed by a trusted key any more (${read.unverified})`;
      const manifest = read.manifest;
      return recoverSnapshots(config, jobName, d, base.path, manifest, files, job.drill.identity?.file);
    });
    if (why) return { reason: `no GNU tar snapshot of the newest full (${base.path}) on this worker, and none could be taken from its artifact: ${why}` };
    return { base, recovered: `the GNU tar snapshot of the base full ${base.path} was taken from its artifact (this worker had none)` };
  }
  return { base };
}

/**
 * A restore chain's components checked against the job's configured sources, before anything is fetched or written
 * (the plan step, so restore and drill both refuse a planted manifest early). A destination is untrusted: a manifest
 * there controls each component's name, type and member, which become paths on the worker. Each must be one of the
 * job's sources (same name, same type), its member exactly what that source writes (`<name>.<extension>`), the path
 * its plugin restores it to must stay inside the restore directory, and the members must fit in the artifact.
 */
import type { Job } from '../config/schema.js';
import type { RestoreArtifact } from '../contracts/restore.js';
import { BackupError } from '../errors.js';
import { insideRoot } from '../lib/paths.js';
import { padding, BLOCK } from '../lib/tar.js';
import { isName } from '../repository/names.js';
import { createSource, findSourcePlugin } from '../sources/index.js';

const refuse = (a: RestoreArtifact, what: string) => new BackupError('RESTORE_FAILED', `restore refused: the manifest of ${a.path} ${what}; nothing was fetched or written`, {
  permanent: true, hint: 'the manifest on the destination does not describe a backup of this job as configured (altered, or the job\'s sources were renamed): restore another backup (--backup, --at) or from another destination',
});

/** Throws (permanent RESTORE_FAILED) unless every component of every artifact of the chain is one the job's sources wrote. */
export function checkChainComponents(jobName: string, job: Job, chain: RestoreArtifact[]): void {
  for (const a of chain) {
    if (!Array.isArray(a.components)) throw refuse(a, 'lists no components');
    let end = 0;
    for (const c of a.components) {
      if (!isName(c.name)) throw refuse(a, `names a component ${JSON.stringify(c.name)}, which is not a name`);
      const source = job.sources.find((s) => s.name === c.name);
      if (!source) throw refuse(a, `names a component "${c.name}", which is no source of job ${jobName} (its sources: ${job.sources.map((s) => s.name).join(', ')})`);
      if (c.type !== source.type) throw refuse(a, `says component "${c.name}" is of type ${JSON.stringify(c.type)}, but source "${c.name}" of job ${jobName} is of type ${source.type}`);
      const member = `${c.name}.${createSource(source).extension}`;
      if (c.member !== member) throw refuse(a, `names the member ${JSON.stringify(c.member)} for component "${c.name}", where source "${c.name}" writes ${member}`);
      if (c.snapshot && c.snapshot.member !== `${c.name}.snar`) throw refuse(a, `names the snapshot member ${JSON.stringify(c.snapshot.member)} for component "${c.name}"`);
      const sizes = [c.size, ...(c.snapshot ? [c.snapshot.size, c.snapshot.offset] : [])];
      if (!sizes.every((n) => Number.isSafeInteger(n) && n >= 0)) throw refuse(a, `gives component "${c.name}" a size that is not a whole number of bytes`);
      // The path its plugin restores it to stays inside the restore directory (checked again against the real one).
      insideRoot('/restore', findSourcePlugin(c.type)!.restore.path(c.name, c.member), `the restore path of component "${c.name}"`);
      end += BLOCK + c.size + padding(c.size);
      if (c.snapshot) end += BLOCK + c.snapshot.size + padding(c.snapshot.size);
    }
    if (!Number.isSafeInteger(a.size) || end > a.size) throw refuse(a, `places members up to byte ${end}, beyond the artifact's ${a.size} bytes`);
  }
}

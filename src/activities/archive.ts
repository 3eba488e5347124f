import { open } from 'node:fs/promises';
import path from 'node:path';
import type { ArchiveResult, ComponentResult, RunPlan, RunRef } from '../contracts/backup.js';
import type { ManifestBase, ManifestDraft } from '../contracts/manifest.js';
import { BackupError } from '../errors.js';
import { toolVersions } from '../lib/exec.js';
import { END_OF_ARCHIVE } from '../lib/tar.js';
import { journalSealed } from '../state/follow.js';
import { ARTIFACT_FILE, bootId, checkStagingBoot, stagingDir } from '../state/staging.js';
import { currentRun, jobContext, runActivity, type ActivityDeps } from './context.js';

export type ArchiveInput = Pick<RunPlan, 'job' | 'type' | 'tier' | 'slot' | 'workflowId' | 'artifactName'> & RunRef & {
  components: ComponentResult[];
  warnings: string[];
  /** A diff's base full. */
  base?: ManifestBase;
};

/**
 * Seals the artifact (end-of-archive blocks after the last component) and drafts the manifest that will be stored
 * beside it. The hashes come later: the artifact's from the first upload (hashed while sent), the components' from
 * the checksum step. Staging is not fsynced; the boot ID check stands in for it (see checkStagingBoot).
 */
export function archive(deps: ActivityDeps) {
  return (input: ArchiveInput): Promise<ArchiveResult> => runActivity(async () => {
    const { config } = jobContext(deps, input);
    const dir = stagingDir(config, input.workflowId);
    const file = path.join(dir, ARTIFACT_FILE);
    const end = input.components.at(-1)?.end;
    if (end === undefined) throw new BackupError('ARCHIVE_FAILED', 'no components to archive');
    for (const c of input.components) checkStagingBoot(c.bootId, `component "${c.name}" in ${file}`);
    const fh = await open(file, 'r+').catch((err: unknown) => {
      throw new BackupError('ARCHIVE_FAILED', `staging artifact ${file} is missing: ${(err as Error).message}`, { cause: err, permanent: true });
    });
    let size: number;
    try {
      const st = await fh.stat();
      if (st.size < end) throw new BackupError('ARCHIVE_FAILED', `staging artifact ${file} is shorter (${st.size} bytes) than its components (${end} bytes)`, { permanent: true });
      await fh.truncate(end);
      await fh.write(END_OF_ARCHIVE, 0, END_OF_ARCHIVE.length, end);
      size = end + END_OF_ARCHIVE.length;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new BackupError('STAGING_SPACE', `the staging disk is full (${dir})`, { cause: err });
      throw err;
    } finally {
      await fh.close();
    }
    journalSealed(dir, size);
    // Every component of a run is encrypted to the same recipients, or none is: a mix (the recipients file changed
    // between two components' dumps) would make a manifest that misdescribes some members.
    const recipients = input.components[0]!.recipients;
    for (const c of input.components) {
      if (JSON.stringify(c.recipients ?? null) !== JSON.stringify(recipients ?? null)) {
        throw new BackupError('CONFIG_INVALID', `the components of this run were encrypted differently (component "${c.name}": ${c.recipients?.join(', ') ?? 'not encrypted'}; component "${input.components[0]!.name}": ${recipients?.join(', ') ?? 'not encrypted'}): the encryption config changed during the run`, { permanent: true, hint: 'run the backup again' });
      }
    }
    const manifest: ManifestDraft = {
      format: 'backupctl-manifest/1',
      job: input.job, type: input.type, tier: input.tier, slot: input.slot,
      workflowId: input.workflowId, runId: currentRun().runId,
      createdAt: new Date().toISOString(),
      artifact: { name: input.artifactName, size, format: 'tar' },
      components: input.components.map((c) => ({
        name: c.name, type: c.type, member: c.member, size: c.size, ...(c.plaintextSize !== undefined ? { plaintextSize: c.plaintextSize } : {}),
        stats: c.stats, ...(c.snapshot ? { snapshot: c.snapshot } : {}),
      })),
      ...(recipients ? { encryption: { type: 'age' as const, recipients } } : {}),
      warnings: [...input.warnings, ...input.components.flatMap((c) => c.warnings)],
      tools: await toolVersions(),
      ...(input.base ? { base: input.base } : {}),
    };
    return { size, bootId: bootId(), manifest };
  });
}

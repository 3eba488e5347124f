import { createHash } from 'node:crypto';
import { open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BackupError } from '../errors.js';
import { toolVersions } from '../lib/exec.js';
import { END_OF_ARCHIVE } from '../lib/tar.js';
import type { ArchiveResult, ComponentResult, Manifest, ManifestBase, RunPlan } from '../shared.js';
import { ARTIFACT_FILE, currentRun, jobContext, progressReporter, runActivity, stagingDir, type ActivityDeps } from './context.js';

export type ArchiveInput = Pick<RunPlan, 'job' | 'type' | 'tier' | 'slot' | 'workflowId' | 'artifactName'> & {
  components: ComponentResult[];
  warnings: string[];
  /** A diff's base full. */
  base?: ManifestBase;
};

/**
 * Seals the artifact (end-of-archive blocks after the last component), computes its size and SHA-256, and
 * writes the manifest that will be stored beside it.
 */
export function archive(deps: ActivityDeps) {
  return (input: ArchiveInput): Promise<ArchiveResult> => runActivity(async () => {
    const { config } = jobContext(deps, input.job);
    const dir = stagingDir(config, input.workflowId);
    const file = path.join(dir, ARTIFACT_FILE);
    const end = input.components.at(-1)?.end;
    if (end === undefined) throw new BackupError('ARCHIVE_FAILED', 'no components to archive');
    const fh = await open(file, 'r+').catch((err: unknown) => {
      throw new BackupError('ARCHIVE_FAILED', `staging artifact ${file} is missing: ${(err as Error).message}`, { cause: err, permanent: true });
    });
    const hash = createHash('sha256');
    let size = 0;
    try {
      const st = await fh.stat();
      if (st.size < end) throw new BackupError('ARCHIVE_FAILED', `staging artifact ${file} is shorter (${st.size} bytes) than its components (${end} bytes)`, { permanent: true });
      await fh.truncate(end);
      await fh.write(END_OF_ARCHIVE, 0, END_OF_ARCHIVE.length, end);
      await fh.sync();
      const report = progressReporter({ step: 'archive' });
      const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, size);
        if (bytesRead === 0) break;
        hash.update(buf.subarray(0, bytesRead));
        size += bytesRead;
        report(size);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new BackupError('STAGING_SPACE', `the staging disk is full (${dir})`, { cause: err });
      throw err;
    } finally {
      await fh.close();
    }
    const manifest: Manifest = {
      format: 'backupctl-manifest/1',
      job: input.job, type: input.type, tier: input.tier, slot: input.slot,
      workflowId: input.workflowId, runId: currentRun().runId,
      createdAt: new Date().toISOString(),
      artifact: { name: input.artifactName, size, sha256: hash.digest('hex'), format: 'tar' },
      components: input.components.map((c) => ({ name: c.name, type: c.type, member: c.member, size: c.size, sha256: c.sha256, stats: c.stats, ...(c.snapshot ? { snapshot: c.snapshot } : {}) })),
      warnings: [...input.warnings, ...input.components.flatMap((c) => c.warnings)],
      tools: await toolVersions(),
      ...(input.base ? { base: input.base } : {}),
    };
    await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
    return { size, sha256: manifest.artifact.sha256, manifest };
  });
}

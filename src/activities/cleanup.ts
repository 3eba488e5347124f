import type { RunRef } from '../contracts/backup.js';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { log } from '@temporalio/activity';
import type { Manifest } from '../contracts/manifest.js';
import { withDestination } from '../destinations/index.js';
import { errorMessage } from '../errors.js';
import { stagedWriteOf } from '../repository/names.js';
import { commitSnapshots } from '../state/snapshots.js';
import { stagingDir } from '../state/staging.js';
import { connectionFor, jobContext, runActivity, type ActivityDeps } from './context.js';

export interface CleanupInput extends RunRef {
  workflowId: string;
  /** Temporary files to remove, per destination. Final files are never named here. */
  temporary: { destination: string; path: string }[];
  /** On success: recorded as the job's last backup on this worker (the size estimate for the next run). */
  manifest?: Manifest;
}

export interface CleanupResult {
  removed: string[];
  problems: string[];
}

/**
 * Compensation and tidy-up: discards the run's pending writes on the destinations (temporary files, S3 multipart
 * uploads) and its staging folder.
 * It never touches a final file. Problems are retried by Temporal while the destination is unreachable.
 */
export function cleanup(deps: ActivityDeps) {
  return (input: CleanupInput): Promise<CleanupResult> => runActivity(async () => {
    const { config } = jobContext(deps, input);
    const removed: string[] = [];
    // Staging first: it is local and always removable, also when a destination is unreachable.
    const staging = stagingDir(config, input.workflowId);
    // A full that every destination finalized and verified becomes the base of the next diffs: only now, never earlier.
    if (input.manifest?.type === 'full') {
      const sources = input.manifest.components.filter((c) => c.snapshot).map((c) => c.name);
      await commitSnapshots(config, input.job, input.manifest.workflowId, staging, sources);
    }
    await rm(staging, { recursive: true, force: true });
    removed.push(staging);
    for (const t of input.temporary) {
      if (!t.path.endsWith('.tmp')) throw new Error(`refusing to remove ${t.path}: not a temporary file`);
      const w = stagedWriteOf(t.path, input.job);
      await withDestination(config, t.destination, async (d) => {
        // The run's own pending write: a temporary file, or an S3 multipart upload (aborted). Never the final name.
        if (await d.discard(w)) removed.push(`${t.destination}:${t.path}`);
      }, connectionFor());
    }
    const problems: string[] = [];
    if (input.manifest) {
      try {
        const dir = path.join(config.stateDir, 'last');
        await mkdir(dir, { recursive: true });
        const file = path.join(dir, `${input.job}.json`);
        await writeFile(`${file}.tmp`, JSON.stringify(input.manifest, null, 2));
        await rename(`${file}.tmp`, file);
      } catch (err) {
        problems.push(`could not record the last backup: ${errorMessage(err)}`);
        log.warn('could not record the last backup', { error: errorMessage(err) });
      }
    }
    return { removed, problems };
  });
}

import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { UploadResult, RunRef } from '../contracts/backup.js';
import { withDestination } from '../destinations/index.js';
import { BackupError } from '../errors.js';
import { stagedWriteOf } from '../repository/names.js';
import { ARTIFACT_FILE, checkStagingBoot, stagingDir } from '../state/staging.js';
import { connectionFor, jobContext, progressReporter, runActivity, type ActivityDeps } from './context.js';

export interface UploadInput extends RunRef {
  workflowId: string;
  destination: string;
  tempPath: string;
  size: number;
  /** What an earlier upload of this run sent: the staged artifact must still hash to it. Absent on the first. */
  sha256?: string;
  bootId: string;
}

/**
 * Streams the artifact into a staged write (src/destinations/types.ts): a pending write beside its final name, never
 * visible under it (a temporary file, or an S3 multipart upload), hashing what is sent: the first upload's hash is the
 * artifact's SHA-256 in the manifest, and every later one (another destination, a re-upload) must send the same bytes.
 * A retry starts the pending write again from the beginning.
 */
export function upload(deps: ActivityDeps) {
  return (input: UploadInput): Promise<UploadResult> => runActivity(async () => {
    const { config } = jobContext(deps, input);
    const file = path.join(stagingDir(config, input.workflowId), ARTIFACT_FILE);
    checkStagingBoot(input.bootId, `the artifact ${file}`);
    const started = Date.now();
    const report = progressReporter({ step: 'upload', destination: input.destination, total: input.size });
    const sent = await withDestination(config, input.destination, (d) =>
      // The flush to the remote disk happens in the verify step, beside the remote hash.
      d.stage(file, stagedWriteOf(input.tempPath, input.job), { signal: Context.current().cancellationSignal, onProgress: report }), connectionFor());
    if (sent.bytes !== input.size || (input.sha256 !== undefined && sent.sha256 !== input.sha256)) {
      throw new BackupError('UPLOAD_CORRUPTED', `the staged artifact changed after it was archived: sent ${sent.bytes} bytes with SHA-256 ${sent.sha256}, archived ${input.size} bytes${input.sha256 ? `, first sent with ${input.sha256}` : ''}`, {
        hint: `check the worker's disk and memory; staging is ${file}`,
      });
    }
    return { ...sent, durationMs: Date.now() - started };
  });
}

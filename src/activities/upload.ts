import path from 'node:path';
import { Context } from '@temporalio/activity';
import { withDestination } from '../destinations/index.js';
import { BackupError } from '../errors.js';
import type { UploadResult } from '../shared.js';
import { ARTIFACT_FILE, connectionFor, jobContext, progressReporter, runActivity, stagingDir, type ActivityDeps } from './context.js';

export interface UploadInput {
  job: string;
  workflowId: string;
  destination: string;
  tempPath: string;
  size: number;
  sha256: string;
}

/**
 * Streams the artifact to a temporary name beside its final one, hashing what is sent; the bytes sent must hash to
 * what the archive step recorded. A retry starts the temporary file again from the beginning.
 */
export function upload(deps: ActivityDeps) {
  return (input: UploadInput): Promise<UploadResult> => runActivity(async () => {
    const { config } = jobContext(deps, input.job);
    const file = path.join(stagingDir(config, input.workflowId), ARTIFACT_FILE);
    const started = Date.now();
    const report = progressReporter({ step: 'upload', destination: input.destination, total: input.size });
    const sent = await withDestination(config, input.destination, (d) =>
      d.upload(file, input.tempPath, { signal: Context.current().cancellationSignal, onProgress: report }), connectionFor());
    if (sent.bytes !== input.size || sent.sha256 !== input.sha256) {
      throw new BackupError('UPLOAD_CORRUPTED', `the staged artifact changed after it was archived: sent ${sent.bytes} bytes with SHA-256 ${sent.sha256}, archived ${input.size} bytes with ${input.sha256}`, {
        hint: `check the worker's disk and memory; staging is ${file}`,
      });
    }
    return { ...sent, durationMs: Date.now() - started };
  });
}

import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { UploadResult, RunRef } from '../contracts/backup.js';
import { withDestination } from '../destinations/index.js';
import { BackupError } from '../errors.js';
import { stagedWriteOf } from '../repository/names.js';
import { ArtifactFollower } from '../state/follow.js';
import { ARTIFACT_FILE, checkStagingBoot, stagingDir } from '../state/staging.js';
import { connectionFor, jobContext, progressReporter, runActivity, type ActivityDeps } from './context.js';

export interface UploadInput extends RunRef {
  workflowId: string;
  destination: string;
  tempPath: string;
  /** The archived artifact's size and the boot it was staged in; absent when the upload follows the dump. */
  size?: number;
  bootId?: string;
  /** What an earlier upload of this run sent: the staged artifact must still hash to it. Absent on the first. */
  sha256?: string;
  /**
   * Started beside the dump: follows the artifact while it is written (src/state/follow.ts) where the destination
   * writes at offsets, and otherwise waits until archive sealed it; ends once the sealed artifact is sent.
   */
  follow?: boolean;
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
    const dir = stagingDir(config, input.workflowId);
    const file = path.join(dir, ARTIFACT_FILE);
    if (input.bootId !== undefined) checkStagingBoot(input.bootId, `the artifact ${file}`);
    const started = Date.now();
    const signal = Context.current().cancellationSignal;
    let acked = 0;
    let size = input.size;
    // Following the dump, the total is known once archive sealed the artifact.
    const heartbeat = progressReporter({ step: 'upload', destination: input.destination, ...(size !== undefined ? { total: size } : {}) });
    const beat = () => heartbeat(acked, size !== undefined ? { total: size } : undefined);
    const report = (bytes: number) => { acked = bytes; beat(); };
    const w = stagedWriteOf(input.tempPath, input.job);
    const sent = await withDestination(config, input.destination, async (d) => {
      if (!input.follow) return d.stage(file, w, { signal, onProgress: report });
      // While the dump runs, the follower waits between pieces: its heartbeats keep the upload alive and cancellable.
      const follower = new ArtifactFollower(dir, { signal, onWait: beat, onSealed: (n) => { size = n; } });
      try {
        if (d.stageFollowing) {
          const r = await d.stageFollowing(follower, w, { signal, onProgress: report });
          size = r.bytes;
          return r;
        }
        size = await follower.sealed();
        return await d.stage(file, w, { signal, onProgress: report });
      } finally {
        await follower.close();
      }
    }, connectionFor());
    if (sent.bytes !== size || (input.sha256 !== undefined && sent.sha256 !== input.sha256)) {
      throw new BackupError('UPLOAD_CORRUPTED', `the staged artifact changed after it was archived: sent ${sent.bytes} bytes with SHA-256 ${sent.sha256}, archived ${size} bytes${input.sha256 ? `, first sent with ${input.sha256}` : ''}`, {
        hint: `check the worker's disk and memory; staging is ${file}`,
      });
    }
    return { ...sent, durationMs: Date.now() - started };
  });
}

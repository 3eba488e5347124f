import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { UploadResult, RunRef } from '../contracts/backup.js';
import { withDestination } from '../destinations/index.js';
import type { DestinationSession, PieceSource } from '../destinations/types.js';
import { BackupError } from '../errors.js';
import { StallWatch } from '../lib/stall-watch.js';
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
    // An attempt that leaves bytes unanswered for 1.5 heartbeat timeouts ends itself (a stalled connection). Temporal
    // times it out earlier, since heartbeats come only with acknowledgements, but the attempt itself would hang on
    // until SSH keepalives gave up. The upload that follows the dump also heartbeats while it waits for the dump's next
    // bytes, so the watch is what notices a stall there. On a stall the destination drops the connection, so that no
    // other step (the size check beside a following upload) waits on it either; the retry connects anew. The half
    // timeout more leaves room for the SDK's heartbeat throttling (a slow link is never taken for a stalled one sooner
    // than by the server).
    const heartbeatMs = Context.current().info.heartbeatTimeoutMs;
    const limit = heartbeatMs ? Math.round(heartbeatMs * 1.5) : undefined;
    const watch = limit ? new StallWatch(limit, () => new BackupError('DESTINATION_UNREACHABLE', `destination "${input.destination}" acknowledged none of the upload's bytes for ${Math.round(limit / 1000)} s (a stalled connection, or a worker too busy to send them)`, {
      hint: 'the upload is retried on a new connection; check the network to the destination if this repeats',
    })) : undefined;
    const sig = watch ? AbortSignal.any([signal, watch.signal]) : signal;
    const progress = (bytes: number) => { watch?.answered(bytes); report(bytes); };
    /** The whole sealed artifact is handed to the destination at once. */
    const stageSealed = (d: DestinationSession, bytes: number) => {
      watch?.sent(bytes);
      return d.stage(file, w, { signal: sig, onProgress: progress });
    };
    const sent = await withDestination(config, input.destination, async (d) => {
      if (!input.follow) return stageSealed(d, size!);
      // While the dump runs, the follower waits between pieces: its heartbeats keep the upload alive and cancellable.
      const follower = new ArtifactFollower(dir, { signal: sig, onWait: beat, onSealed: (n) => { size = n; } });
      const pieces: PieceSource = {
        next: async (buf) => { const p = await follower.next(buf); if (p) watch?.sent(p.len); return p; },
        end: () => follower.end(),
      };
      try {
        if (d.stageFollowing) {
          const r = await d.stageFollowing(pieces, w, { signal: sig, onProgress: progress });
          size = r.bytes;
          return r;
        }
        size = await follower.sealed();
        return await stageSealed(d, size);
      } finally {
        await follower.close();
      }
    }, connectionFor()).finally(() => watch?.stop());
    if (sent.bytes !== size || (input.sha256 !== undefined && sent.sha256 !== input.sha256)) {
      throw new BackupError('UPLOAD_CORRUPTED', `the staged artifact changed after it was archived: sent ${sent.bytes} bytes with SHA-256 ${sent.sha256}, archived ${size} bytes${input.sha256 ? `, first sent with ${input.sha256}` : ''}`, {
        hint: `check the worker's disk and memory; staging is ${file}`,
      });
    }
    return { ...sent, durationMs: Date.now() - started };
  });
}

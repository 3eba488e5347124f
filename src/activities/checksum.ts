import { open } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { ChecksumResult, RunRef } from '../contracts/backup.js';
import { RangeHasher } from '../lib/range-hasher.js';
import { BLOCK } from '../lib/tar.js';
import { ARTIFACT_FILE, checkStagingBoot, stagingDir } from '../state/staging.js';
import { jobContext, progressReporter, runActivity, type ActivityDeps } from './context.js';

export interface ChecksumInput extends RunRef {
  workflowId: string;
  /** Where each component's header starts in the artifact, and its size. */
  components: { offset: number; size: number }[];
  bootId: string;
}

const CHUNK = 1024 * 1024;

/**
 * SHA-256 of each component in the staged artifact, for the manifest. The workflow runs it while the first
 * destination re-reads its copy: the worker's CPU is idle then (the remote hash runs on the destination), whereas
 * during the dump it is busy compressing. The bytes come from the page cache the upload just read them from; the
 * artifact's own hash is what the upload sent, and a restore or drill checks both against the manifest.
 */
export function checksum(deps: ActivityDeps) {
  return (input: ChecksumInput): Promise<ChecksumResult> => runActivity(async () => {
    const { config } = jobContext(deps, input);
    const file = path.join(stagingDir(config, input.workflowId), ARTIFACT_FILE);
    checkStagingBoot(input.bootId, `the artifact ${file}`);
    const ranges = input.components.map((c) => ({ start: c.offset + BLOCK, end: c.offset + BLOCK + c.size }));
    const last = Math.max(0, ...ranges.map((r) => r.end));
    const signal = Context.current().cancellationSignal;
    const report = progressReporter({ step: 'checksum', total: last });
    const hasher = new RangeHasher(ranges, 4, false); // at most 4 MiB queued for the thread, and as many kept for reuse
    const fh = await open(file, 'r');
    try {
      let pos = 0;
      while (pos < last) {
        signal.throwIfAborted();
        const buf = hasher.take(CHUNK);
        const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, last - pos), pos);
        if (bytesRead === 0) throw new Error(`the staged artifact ${file} ends at ${pos} bytes, before its last component (${last})`);
        await hasher.update(buf, bytesRead);
        pos += bytesRead;
        report(pos);
      }
      return { components: (await hasher.digest()).parts };
    } catch (err) {
      void hasher.destroy();
      throw err;
    } finally {
      await fh.close();
    }
  });
}

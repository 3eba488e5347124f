import { Context } from '@temporalio/activity';
import type { VerifyResult, RunRef } from '../contracts/backup.js';
import { withDestination } from '../destinations/index.js';
import { judgeStaged } from '../destinations/staged-check.js';
import { stagedWriteOf } from '../repository/names.js';
import { connectionFor, jobContext, progressReporter, runActivity, type ActivityDeps } from './context.js';

export interface VerifyInput extends RunRef {
  destination: string;
  path: string;
  size: number;
  sha256: string;
  /** The upload's receipt (UploadResult.receipt), when the destination gave one. */
  receipt?: string;
}

/**
 * Checks the pending write where it is stored: its size and a fresh SHA-256 (a destination that hashes where the bytes
 * are, `serverSideHash`, or reads them back) must equal the local ones; a destination that hashes each part on receipt
 * instead (S3) must hold exactly the parts the upload's receipt names. A missing file or a missing hash is a failure,
 * never a pass (incident 01).
 */
export function verify(deps: ActivityDeps) {
  return (input: VerifyInput): Promise<VerifyResult> => runActivity(async () => {
    const { config } = jobContext(deps, input);
    const report = progressReporter({ step: 'verify', destination: input.destination });
    // A remote hash command reports nothing until it is done: keep heartbeating meanwhile (the SSH keepalive
    // catches a dead connection).
    const ctx = Context.current();
    const timer = setInterval(() => ctx.heartbeat({ step: 'verify', destination: input.destination }), 5000);
    try {
      return await withDestination(config, input.destination, async (d) => {
        const facts = await d.inspectStaged(stagedWriteOf(input.path, input.job), { signal: ctx.cancellationSignal, onProgress: report });
        const expected = { size: input.size, sha256: input.sha256, ...(input.receipt !== undefined ? { receipt: input.receipt } : {}) };
        return judgeStaged(facts, expected, d.capabilities, `${input.path} on destination "${input.destination}" (${d.location})`);
      }, connectionFor());
    } finally {
      clearInterval(timer);
    }
  });
}

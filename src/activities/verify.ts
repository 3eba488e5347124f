import { Context } from '@temporalio/activity';
import type { VerifyResult, RunRef } from '../contracts/backup.js';
import { withDestination } from '../destinations/index.js';
import { BackupError } from '../errors.js';
import { connectionFor, jobContext, progressReporter, runActivity, type ActivityDeps } from './context.js';

export interface VerifyInput extends RunRef {
  destination: string;
  path: string;
  size: number;
  sha256: string;
}

/**
 * Re-reads the stored file where it is stored: its size and a fresh SHA-256 must equal the local ones.
 * A missing file or a missing hash is a failure, never a pass (incident 01).
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
        const st = await d.stat(input.path);
        if (!st) throw new BackupError('VERIFY_MISSING', `verify: ${input.path} does not exist on destination "${input.destination}" (${d.location}) after the upload`);
        if (st.size !== input.size) {
          throw new BackupError('VERIFY_MISMATCH', `verify: ${input.path} on destination "${input.destination}" has ${st.size} bytes, ${input.size} were uploaded`);
        }
        // The upload left the flush to stable storage to this step: it runs beside the hash (disk and CPU overlap), and
        // the file counts as verified only when both are done.
        const [{ sha256, method }] = await Promise.all([d.sha256(input.path, { signal: ctx.cancellationSignal, onProgress: report }), d.sync(input.path)]);
        if (!/^[0-9a-f]{64}$/.test(sha256)) throw new BackupError('VERIFY_MISMATCH', `verify: no valid SHA-256 for ${input.path} on destination "${input.destination}" (${method})`);
        if (sha256 !== input.sha256) {
          throw new BackupError('VERIFY_MISMATCH', `verify: SHA-256 mismatch for ${input.path} on destination "${input.destination}" (${method}): stored ${sha256}, uploaded ${input.sha256}`);
        }
        return { size: st.size, sha256, method };
      }, connectionFor());
    } finally {
      clearInterval(timer);
    }
  });
}

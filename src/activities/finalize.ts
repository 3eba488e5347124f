import type { RunRef } from '../contracts/backup.js';
import type { Manifest } from '../contracts/manifest.js';
import { withDestination } from '../destinations/index.js';
import { BackupError } from '../errors.js';
import { stagedWriteOf } from '../repository/names.js';
import { signatureFor, signatureName } from '../repository/signatures.js';
import { loadSigningKey } from '../state/keys.js';
import { connectionFor, jobContext, runActivity, type ActivityDeps } from './context.js';

export interface FinalizeInput extends RunRef {
  destination: string;
  tempPath: string;
  finalPath: string;
  manifestPath: string;
  manifest: Manifest;
  /** The upload's receipt (UploadResult.receipt), when the destination gave one. */
  receipt?: string;
}

/**
 * Commits the verified staged write under its final name (atomically, never replacing: a rename that fails on an
 * existing target, or S3's CompleteMultipartUpload with `If-None-Match: *`), checks the final file's size again, then
 * writes the manifest beside it, last (created only if absent where the destination can, `conditionalCreate`): a
 * backup without its manifest does not exist. The manifest is signed
 * with the worker's key (read here, on the worker) over the exact bytes written; the signature `<manifest>.sig` is
 * written just before the manifest, so a manifest never exists unsigned.
 * Safe to repeat after a crash: a final file that is already ours (same size and hash) is accepted, and so is a
 * manifest with exactly the bytes this run writes (its signature is written again).
 */
export function finalize(deps: ActivityDeps) {
  return (input: FinalizeInput): Promise<{ path: string }> => runActivity(async () => {
    const { config } = jobContext(deps, input);
    const { size, sha256 } = input.manifest.artifact;
    const key = loadSigningKey(config);
    const bytes = Buffer.from(`${JSON.stringify(input.manifest, null, 2)}\n`);
    const signature = signatureFor('manifest', bytes, key);
    return withDestination(config, input.destination, async (d) => {
      const where = `destination "${input.destination}" (${d.location})`;
      if (await d.stat(input.manifestPath)) {
        const stored = (await d.readSmallFile(input.manifestPath)) ?? Buffer.alloc(0);
        if (stored.equals(bytes)) {
          await d.writeSmallFile(signatureName(input.manifestPath), signature);
          return { path: input.finalPath };
        }
        let existing: Partial<Manifest> = {};
        try {
          existing = JSON.parse(stored.toString()) as Manifest;
        } catch {
          // not even JSON: reported below all the same
        }
        throw new BackupError('DESTINATION_EXISTS', `finalize: ${where} already holds a backup for this slot (${input.finalPath}, written by ${existing.workflowId}); it was not touched`);
      }
      const w = stagedWriteOf(input.tempPath, input.job);
      if (w.final !== input.finalPath) throw new BackupError('FINALIZE_FAILED', `finalize: ${input.tempPath} is not the temporary file of ${input.finalPath}`, { permanent: true });
      await d.commit(w, { size, sha256, ...(input.receipt !== undefined ? { receipt: input.receipt } : {}) });
      await d.writeSmallFile(signatureName(input.manifestPath), signature);
      if (!d.capabilities.conditionalCreate) {
        await d.writeSmallFile(input.manifestPath, bytes);
        return { path: input.finalPath };
      }
      try {
        await d.writeSmallFile(input.manifestPath, bytes, { exclusive: true });
      } catch (err) {
        // Another writer's manifest appeared since the check above: never replaced; ours if the bytes are the same.
        if (!(err instanceof BackupError && err.code === 'DESTINATION_EXISTS')) throw err;
        if (!((await d.readSmallFile(input.manifestPath)) ?? Buffer.alloc(0)).equals(bytes)) {
          throw new BackupError('DESTINATION_EXISTS', `finalize: ${where} already holds a backup for this slot (${input.finalPath}); it was not touched`);
        }
      }
      return { path: input.finalPath };
    }, connectionFor());
  });
}

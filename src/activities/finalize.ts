import type { RunRef } from '../contracts/backup.js';
import type { Manifest } from '../contracts/manifest.js';
import { withDestination } from '../destinations/index.js';
import { BackupError } from '../errors.js';
import { signatureFor, signatureName } from '../repository/signatures.js';
import { loadSigningKey } from '../state/keys.js';
import { connectionFor, jobContext, runActivity, type ActivityDeps } from './context.js';

export interface FinalizeInput extends RunRef {
  destination: string;
  tempPath: string;
  finalPath: string;
  manifestPath: string;
  manifest: Manifest;
}

/**
 * Renames the verified temporary file to its final name (atomic `posix-rename`), checks the final file's size
 * again, then writes the manifest beside it, last: a backup without its manifest does not exist. The manifest is signed
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
      const temp = await d.stat(input.tempPath);
      const final = await d.stat(input.finalPath);
      if (temp) {
        if (final) {
          // A final file without a manifest: ours if an earlier attempt renamed and then crashed; replace it only then.
          const h = await d.sha256(input.finalPath);
          if (h.sha256 !== sha256) throw new BackupError('DESTINATION_EXISTS', `finalize: ${where} has a file without manifest at ${input.finalPath} that is not this backup; it was not touched`, { hint: 'remove it by hand after checking what it is' });
        }
        await d.rename(input.tempPath, input.finalPath);
      } else if (!final) {
        throw new BackupError('FINALIZE_FAILED', `finalize: the verified temporary file ${input.tempPath} vanished from ${where} before it could be renamed`, { permanent: true });
      }
      const st = await d.stat(input.finalPath);
      if (!st || st.size !== size) {
        throw new BackupError('FINALIZE_FAILED', `finalize: ${input.finalPath} on ${where} has ${st ? `${st.size} bytes` : 'vanished'} after the rename, expected ${size} bytes`, { permanent: true });
      }
      await d.writeSmallFile(signatureName(input.manifestPath), signature);
      await d.writeSmallFile(input.manifestPath, bytes);
      return { path: input.finalPath };
    }, connectionFor());
  });
}

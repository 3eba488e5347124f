/**
 * Manifests read back from a destination. A destination is untrusted storage: a manifest is parsed here, and
 * `checkManifest` refuses one that does not describe the artifact beside it. The format itself is
 * src/contracts/manifest.ts (the workflow completes it).
 */
import type { Manifest } from '../contracts/manifest.js';
import type { DestinationSession } from '../destinations/types.js';

/** Reads and parses a manifest file; throws when it is missing or not JSON. */
export async function readManifest(d: DestinationSession, path: string): Promise<Manifest> {
  return JSON.parse((await d.readSmallFile(path))!.toString()) as Manifest;
}

/** Throws unless the manifest is of `job`, names `artifact` and has a slot and a known type. */
export function checkManifest(manifest: Manifest, job: string, artifact: string): void {
  if (manifest.job !== job || manifest.artifact?.name !== artifact || typeof manifest.slot !== 'string' || (manifest.type !== 'full' && manifest.type !== 'diff')) {
    throw new Error('it does not describe this artifact');
  }
}

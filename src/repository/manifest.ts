/**
 * Manifests read back from a destination. A destination is untrusted storage: a manifest is parsed here, and
 * `checkManifest` refuses one that does not describe the artifact beside it, and a manifest whose signature does not
 * verify is reported as unverified. The format itself is
 * src/contracts/manifest.ts (the workflow completes it).
 */
import type { Manifest } from '../contracts/manifest.js';
import type { DestinationSession } from '../destinations/types.js';
import { readSigned, type Trust } from './signatures.js';

/** A manifest read back, and whether its signature (`<manifest>.sig`) verifies against a trusted public key. */
export interface ReadManifest {
  manifest: Manifest;
  /** The key that signed it, when the signature verifies. */
  keyId?: string;
  /** Why it is not a manifest of this deployment, when the signature does not verify. */
  unverified?: string;
}

/**
 * Reads and parses a manifest file and checks its signature over the bytes read (src/repository/signatures.ts); throws
 * when it is missing or not JSON. The one place manifests are read back: every consumer gets the verification.
 */
export async function readManifest(d: DestinationSession, path: string, trust: Trust): Promise<ReadManifest> {
  const { bytes, verification } = await readSigned(d, path, 'manifest', trust);
  if (bytes === undefined) throw new Error(`${path} is missing`);
  const manifest = JSON.parse(bytes.toString()) as Manifest;
  return verification.ok ? { manifest, keyId: verification.keyId } : { manifest, unverified: verification.reason };
}

/** Throws unless the manifest is of `job`, names `artifact` and has a slot and a known type. */
export function checkManifest(manifest: Manifest, job: string, artifact: string): void {
  if (manifest.job !== job || manifest.artifact?.name !== artifact || typeof manifest.slot !== 'string' || (manifest.type !== 'full' && manifest.type !== 'diff')) {
    throw new Error('it does not describe this artifact');
  }
}

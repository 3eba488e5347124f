/**
 * Signatures on a destination. Every manifest and drill report a worker writes has a detached signature beside it,
 * `<file>.sig`: a small JSON `{ format: "backupctl-signature/1", algorithm: "ed25519", keyId, signature }`. The
 * signature is over the exact bytes of the file as written (never a re-serialisation), prefixed with what kind of file
 * it is, so that a drill report's signature never passes for a manifest's. A file whose signature does not verify
 * against a trusted public key (src/state/keys.ts) is not a file of this deployment.
 */
import type { KeyObject } from 'node:crypto';
import type { DestinationSession } from '../destinations/types.js';
import { keyIdOf, signBytes, verifyBytes } from '../lib/signing.js';

export const SIGNATURE_FORMAT = 'backupctl-signature/1';
/** Larger `.sig` files are refused unread: a real one is about 200 bytes. */
const MAX_SIGNATURE_BYTES = 4096;

export type SignedKind = 'manifest' | 'drill-report';

/** The detached signature's file name beside `file` (a path or a name). */
export const signatureName = (file: string) => `${file}.sig`;

/** The worker's private key, and its key ID. */
export interface SigningKey {
  keyId: string;
  privateKey: KeyObject;
}

/** The public keys a host trusts, by key ID; `none` says why there are none, when there are none. */
export interface Trust {
  keys: Map<string, KeyObject>;
  none?: string;
}

export function trustFrom(keys: KeyObject[], none?: string): Trust {
  return { keys: new Map(keys.map((k) => [keyIdOf(k), k])), ...(keys.length === 0 && none ? { none } : {}) };
}

const message = (kind: SignedKind, bytes: Buffer) => Buffer.concat([Buffer.from(`${SIGNATURE_FORMAT}\0${kind}\0`), bytes]);

/** The `.sig` file for `bytes`. */
export function signatureFor(kind: SignedKind, bytes: Buffer, key: SigningKey): Buffer {
  const signature = signBytes(key.privateKey, message(kind, bytes)).toString('base64');
  return Buffer.from(`${JSON.stringify({ format: SIGNATURE_FORMAT, algorithm: 'ed25519', keyId: key.keyId, signature })}\n`);
}

export type Verification = { ok: true; keyId: string } | { ok: false; reason: string };

/** Whether `sig` (the `.sig` file's bytes, undefined when there is none) is a valid signature of `bytes` by a trusted key. */
export function verifySignature(kind: SignedKind, bytes: Buffer, sig: Buffer | undefined, trust: Trust): Verification {
  if (sig === undefined) return { ok: false, reason: 'no signature (made before signing existed, or by someone without the key)' };
  if (sig.length > MAX_SIGNATURE_BYTES) return { ok: false, reason: `the signature file has ${sig.length} bytes` };
  let parsed: { format?: unknown; algorithm?: unknown; keyId?: unknown; signature?: unknown };
  try {
    parsed = JSON.parse(sig.toString('utf8')) as typeof parsed;
  } catch {
    return { ok: false, reason: 'the signature file is not JSON' };
  }
  if (parsed?.format !== SIGNATURE_FORMAT || parsed.algorithm !== 'ed25519' || typeof parsed.keyId !== 'string' || typeof parsed.signature !== 'string') {
    return { ok: false, reason: `the signature file is not ${SIGNATURE_FORMAT} (ed25519)` };
  }
  const key = trust.keys.get(parsed.keyId);
  if (!key) {
    return { ok: false, reason: `signed with key ${JSON.stringify(parsed.keyId.slice(0, 64))}, which is not trusted${trust.none ? ` (${trust.none})` : ` (trusted: ${[...trust.keys.keys()].join(', ')})`}` };
  }
  if (!verifyBytes(key, message(kind, bytes), Buffer.from(parsed.signature, 'base64'))) {
    return { ok: false, reason: `the signature by key ${parsed.keyId} does not match the ${kind === 'manifest' ? 'manifest' : 'drill report'} (altered after signing)` };
  }
  return { ok: true, keyId: parsed.keyId };
}

/** Reads a file and its signature from a destination; `bytes` is undefined when the file is missing. */
export async function readSigned(d: DestinationSession, path: string, kind: SignedKind, trust: Trust, maxBytes?: number): Promise<{ bytes: Buffer | undefined; verification: Verification }> {
  const bytes = await d.readSmallFile(path, maxBytes);
  if (bytes === undefined) return { bytes, verification: { ok: false, reason: 'missing' } };
  return { bytes, verification: verifySignature(kind, bytes, await d.readSmallFile(signatureName(path)), trust) };
}

/** Writes a file with its signature: the signature first, so that the file never exists unsigned. */
export async function writeSigned(d: DestinationSession, path: string, kind: SignedKind, bytes: Buffer, key: SigningKey): Promise<void> {
  await d.writeSmallFile(signatureName(path), signatureFor(kind, bytes, key));
  await d.writeSmallFile(path, bytes);
}

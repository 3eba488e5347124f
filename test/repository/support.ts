import { keyIdOf, parsePrivateKey, parsePublicKey, generateSigningKeyPair } from '../../src/lib/signing.js';
import { signatureFor, trustFrom, type SigningKey, type Trust } from '../../src/repository/signatures.js';

/**
 * A deployment's signing key for tests that fill a destination by hand: `sign` makes the signature a worker would
 * write beside a manifest, `trust` is the worker's trust list (signatures.test.ts covers manifests that are not signed).
 */
export function deploymentKey(): { key: SigningKey; trust: Trust; sign(manifest: string | Buffer): Buffer } {
  const pair = generateSigningKeyPair();
  const key = { keyId: keyIdOf(parsePrivateKey(pair.privatePem)), privateKey: parsePrivateKey(pair.privatePem) };
  return { key, trust: trustFrom([parsePublicKey(pair.publicPem)]), sign: (m) => signatureFor('manifest', Buffer.from(m), key) };
}

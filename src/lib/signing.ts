/**
 * Ed25519 signing primitives (node:crypto): key pairs, key IDs, the one-line public key form, sign and verify. What is
 * signed and how a signature lies on a destination is src/repository/signatures.ts; where the keys live on a host is
 * src/state/keys.ts.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

/** A new Ed25519 key pair, as PEM: the private key PKCS#8, the public key SPKI. */
export function generateSigningKeyPair(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** A key's ID: the first 16 hex digits of the SHA-256 of its public key (SPKI DER). */
export function keyIdOf(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

/** The one-line form of a public key, `ed25519:<base64url of the 32 key bytes>`, for `signing.trust` in a config. */
export function publicKeyLine(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return `ed25519:${pub.export({ format: 'jwk' }).x!}`;
}

/** Reads an Ed25519 public key: PEM (SPKI) or the one-line form; throws with a reason for anything else. */
export function parsePublicKey(text: string): KeyObject {
  const t = text.trim();
  const line = /^ed25519:([A-Za-z0-9_-]{43})$/.exec(t);
  let key: KeyObject;
  try {
    key = line ? createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: line[1]! }, format: 'jwk' }) : createPublicKey(t);
  } catch {
    throw new Error('not an Ed25519 public key (expected PEM "-----BEGIN PUBLIC KEY-----" or "ed25519:<43 base64url characters>")');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType ?? 'unknown'} key, not Ed25519`);
  return key;
}

/** Reads an Ed25519 private key (PEM, PKCS#8); throws with a reason for anything else. */
export function parsePrivateKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new Error('not a PEM private key');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType ?? 'unknown'} key, not Ed25519`);
  return key;
}

export function signBytes(privateKey: KeyObject, data: Buffer): Buffer {
  return sign(null, data, privateKey);
}

export function verifyBytes(publicKey: KeyObject, data: Buffer, signature: Buffer): boolean {
  try {
    return verify(null, data, publicKey, signature);
  } catch {
    return false;
  }
}

import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/contracts/manifest.js';
import { LocalSession } from '../../src/destinations/local/index.js';
import { generateSigningKeyPair, keyIdOf, parsePrivateKey, parsePublicKey, publicKeyLine } from '../../src/lib/signing.js';
import { catalogDestination, manifestsNewestFirst, newestOnDestination } from '../../src/repository/catalog.js';
import { layout } from '../../src/repository/layout.js';
import { readManifest } from '../../src/repository/manifest.js';
import { signatureFor, signatureName, trustFrom, verifySignature, type SigningKey } from '../../src/repository/signatures.js';

function keyPair(): { key: SigningKey; publicPem: string } {
  const { privatePem, publicPem } = generateSigningKeyPair();
  const privateKey = parsePrivateKey(privatePem);
  return { key: { keyId: keyIdOf(privateKey), privateKey }, publicPem };
}

const ours = keyPair();
const old = keyPair();
const stranger = keyPair();
const trust = trustFrom([parsePublicKey(ours.publicPem)]);

describe('keys', () => {
  it('a key ID is the first 16 hex digits of the SHA-256 of the public key (SPKI DER), the same from either half', () => {
    const der = createPublicKey(ours.publicPem).export({ type: 'spki', format: 'der' });
    const expected = createHash('sha256').update(der).digest('hex').slice(0, 16);
    expect(ours.key.keyId).toBe(expected);
    expect(keyIdOf(parsePublicKey(ours.publicPem))).toBe(expected);
    expect(ours.key.keyId).not.toBe(old.key.keyId);
  });

  it('reads a public key as PEM or as the one-line form, and refuses anything else', () => {
    const line = publicKeyLine(parsePublicKey(ours.publicPem));
    expect(line).toMatch(/^ed25519:[A-Za-z0-9_-]{43}$/);
    expect(keyIdOf(parsePublicKey(line))).toBe(ours.key.keyId);
    expect(keyIdOf(parsePublicKey(`  ${line}\n`))).toBe(ours.key.keyId);
    expect(() => parsePublicKey('ed25519:short')).toThrow(/not an Ed25519 public key/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(() => parsePublicKey(rsa)).toThrow(/a rsa key, not Ed25519/);
    expect(() => parsePrivateKey(ours.publicPem)).toThrow();
  });
});

describe('signatures', () => {
  const bytes = Buffer.from('{\n  "format": "backupctl-manifest/1"\n}\n');

  it('a signature by a trusted key verifies, and names the key', () => {
    const sig = signatureFor('manifest', bytes, ours.key);
    expect(JSON.parse(sig.toString())).toMatchObject({ format: 'backupctl-signature/1', algorithm: 'ed25519', keyId: ours.key.keyId });
    expect(verifySignature('manifest', bytes, sig, trust)).toEqual({ ok: true, keyId: ours.key.keyId });
  });

  it('one byte changed in the file, or in the signature, and it does not verify', () => {
    const sig = signatureFor('manifest', bytes, ours.key);
    const altered = Buffer.from(bytes);
    altered[5] = altered[5]! ^ 1;
    expect(verifySignature('manifest', altered, sig, trust)).toEqual({ ok: false, reason: expect.stringMatching(/does not match the manifest \(altered after signing\)/) });
    // Whitespace counts: the exact bytes are signed, not a re-serialisation.
    expect(verifySignature('manifest', Buffer.from(JSON.stringify(JSON.parse(bytes.toString()))), sig, trust).ok).toBe(false);
    const parsed = JSON.parse(sig.toString()) as { signature: string };
    const s = Buffer.from(parsed.signature, 'base64');
    s[0] = s[0]! ^ 1;
    expect(verifySignature('manifest', bytes, Buffer.from(JSON.stringify({ ...parsed, signature: s.toString('base64') })), trust).ok).toBe(false);
  });

  it('no signature, a malformed one, or one by a key not trusted: not verified, with the reason', () => {
    expect(verifySignature('manifest', bytes, undefined, trust)).toEqual({ ok: false, reason: expect.stringMatching(/^no signature/) });
    expect(verifySignature('manifest', bytes, Buffer.from('nope'), trust)).toEqual({ ok: false, reason: 'the signature file is not JSON' });
    expect(verifySignature('manifest', bytes, Buffer.from('{"format":"backupctl-signature/1","algorithm":"rsa","keyId":"x","signature":"y"}'), trust).ok).toBe(false);
    expect(verifySignature('manifest', bytes, Buffer.alloc(5000, 32), trust)).toEqual({ ok: false, reason: 'the signature file has 5000 bytes' });
    expect(verifySignature('manifest', bytes, signatureFor('manifest', bytes, stranger.key), trust)).toEqual({ ok: false, reason: expect.stringContaining(`signed with key "${stranger.key.keyId}", which is not trusted (trusted: ${ours.key.keyId})`) });
    // The key ID in the file is only a hint: a stranger's signature under our key ID does not verify.
    const forged = { ...JSON.parse(signatureFor('manifest', bytes, stranger.key).toString()) as object, keyId: ours.key.keyId };
    expect(verifySignature('manifest', bytes, Buffer.from(JSON.stringify(forged)), trust).ok).toBe(false);
    expect(verifySignature('manifest', bytes, signatureFor('manifest', bytes, ours.key), trustFrom([], 'no key here'))).toEqual({ ok: false, reason: expect.stringContaining('(no key here)') });
  });

  it('a drill report\'s signature does not pass for a manifest\'s', () => {
    expect(verifySignature('manifest', bytes, signatureFor('drill-report', bytes, ours.key), trust).ok).toBe(false);
    expect(verifySignature('drill-report', bytes, signatureFor('drill-report', bytes, ours.key), trust).ok).toBe(true);
  });

  it('rotation: with the old public key in the trust list, files signed by either key verify', () => {
    const both = trustFrom([parsePublicKey(ours.publicPem), parsePublicKey(publicKeyLine(parsePublicKey(old.publicPem)))]);
    expect(verifySignature('manifest', bytes, signatureFor('manifest', bytes, old.key), both)).toEqual({ ok: true, keyId: old.key.keyId });
    expect(verifySignature('manifest', bytes, signatureFor('manifest', bytes, ours.key), both)).toEqual({ ok: true, keyId: ours.key.keyId });
    expect(verifySignature('manifest', bytes, signatureFor('manifest', bytes, old.key), trust).ok).toBe(false);
  });
});

describe('manifests read back from a destination', () => {
  let root: string;
  let d: LocalSession;
  const slots = ['2025-11-01T03:00:00Z', '2025-11-02T03:00:00Z', '2025-11-03T03:00:00Z', '2025-11-04T03:00:00Z'];
  const paths: string[] = [];

  /** A full backup of `app` at `slot`, its manifest signed by `key` (or not at all); `alter` changes its bytes after signing. */
  function put(slot: string, key: SigningKey | undefined, alter?: (text: string) => string): string {
    const workflowId = `backup-app-full-${slot}`;
    const l = layout('app', 'full', 'daily', new Date(slot), workflowId);
    const manifest: Manifest = {
      format: 'backupctl-manifest/1', job: 'app', type: 'full', tier: 'daily', slot, workflowId, runId: 'r', createdAt: slot,
      artifact: { name: l.artifactName, size: 4, sha256: 'a'.repeat(64), format: 'tar' }, components: [], warnings: [], tools: {},
    };
    mkdirSync(path.join(root, l.dir), { recursive: true });
    writeFileSync(path.join(root, l.finalPath), 'data');
    const text = `${JSON.stringify(manifest, null, 2)}\n`;
    if (key) writeFileSync(path.join(root, signatureName(l.manifestPath)), signatureFor('manifest', Buffer.from(text), key));
    writeFileSync(path.join(root, l.manifestPath), alter ? alter(text) : text);
    return l.finalPath;
  }

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'backupctl-signatures-'));
    paths.push(
      put(slots[0]!, old.key), // rotated away from: trusted only through the trust list
      put(slots[1]!, ours.key),
      put(slots[2]!, ours.key, (t) => t.replace('"runId": "r"', '"runId": "s"')), // tampered: one byte changed
      put(slots[3]!, undefined), // planted, or made before signing existed
    );
    d = await new LocalSession('nas', { type: 'local', path: root } as never).connect();
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('readManifest says which key signed it, or why it is unverified', async () => {
    expect(await readManifest(d, `${paths[1]}.manifest.json`, trust)).toMatchObject({ keyId: ours.key.keyId, manifest: { slot: slots[1] } });
    expect((await readManifest(d, `${paths[2]}.manifest.json`, trust)).unverified).toMatch(/altered after signing/);
    expect((await readManifest(d, `${paths[3]}.manifest.json`, trust)).unverified).toMatch(/^no signature/);
  });

  it('the catalog lists only verified backups, and the others apart as unverified with the reason', async () => {
    const cat = await catalogDestination(d, 'app', trust);
    expect(cat.backups.map((b) => [b.path, b.keyId])).toEqual([[paths[1], ours.key.keyId]]);
    expect(cat.unverified.map((u) => u.path)).toEqual([paths[3], paths[2], paths[0]]);
    expect(cat.unverified.map((u) => u.reason)).toEqual([
      expect.stringMatching(/^no signature/), expect.stringMatching(/altered after signing/), expect.stringMatching(/which is not trusted/),
    ]);
    expect(cat.anomalies).toEqual([]);
    // Rotation: the old key in the trust list makes its backup verified again.
    const rotated = await catalogDestination(d, 'app', trustFrom([parsePublicKey(ours.publicPem), parsePublicKey(old.publicPem)]));
    expect(rotated.backups.map((b) => [b.path, b.keyId])).toEqual([[paths[1], ours.key.keyId], [paths[0], old.key.keyId]]);
  });

  it('the walkers (size check, freshness, diff base) skip unverified manifests', async () => {
    const seen: string[] = [];
    for await (const { manifest } of manifestsNewestFirst(d, 'daily', 'app', trust)) seen.push(manifest.slot);
    expect(seen).toEqual([slots[1]]);
    const newest = await newestOnDestination(d, 'app', ['full'], trust, Date.parse('2025-11-05T03:00:00Z'));
    expect(newest.full).toMatchObject({ slot: slots[1], path: paths[1] });
    expect((await newestOnDestination(d, 'app', ['full'], trustFrom([]))).full).toBeUndefined();
  });
});

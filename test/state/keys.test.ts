import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSigningKeyPair, keyIdOf, parsePublicKey, publicKeyLine } from '../../src/lib/signing.js';
import { signatureFor, verifySignature } from '../../src/repository/signatures.js';
import { createSigningKey, ensureSigningKey, loadSigningKey, signingKeyFiles, trustOf } from '../../src/state/keys.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'backupctl-keys-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const cfg = (name: string, signing: { key?: { file: string }; trust?: (string | { file: string })[] } = {}) => ({ stateDir: path.join(tmp, name), signing: { trust: [], ...signing } });
const mode = (f: string) => statSync(f).mode & 0o777;

describe('signing keys on the worker', () => {
  it('keys init: the private key 0600 in a 0700 folder, the public key 0644 beside it; never over an existing one', () => {
    const config = cfg('init');
    const k = createSigningKey(config);
    expect(k.privateFile).toBe(path.join(config.stateDir, 'keys', 'signing.key'));
    expect(k.publicFile).toBe(`${k.privateFile}.pub`);
    expect([mode(k.privateFile), mode(k.publicFile), mode(path.dirname(k.privateFile))]).toEqual([0o600, 0o644, 0o700]);
    expect(readFileSync(k.privateFile, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(k.keyId).toBe(keyIdOf(parsePublicKey(readFileSync(k.publicFile, 'utf8'))));
    expect(k.publicKey).toBe(publicKeyLine(parsePublicKey(readFileSync(k.publicFile, 'utf8'))));
    const before = readFileSync(k.privateFile, 'utf8');
    expect(() => createSigningKey(config)).toThrow(expect.objectContaining({ code: 'SIGNING_KEY_EXISTS' }));
    rmSync(k.privateFile);
    // The public key alone also refuses: a new private key would not match it.
    expect(() => createSigningKey(config)).toThrow(expect.objectContaining({ code: 'SIGNING_KEY_EXISTS' }));
    expect(existsSync(k.privateFile)).toBe(false);
    writeFileSync(k.privateFile, before, { mode: 0o600 });
  });

  it('without signing.key the default key is created on first use; a configured key that is missing is an error', () => {
    const config = cfg('first-start');
    const created = ensureSigningKey(config)!;
    expect(created.privateFile).toBe(signingKeyFiles(config).privateFile);
    expect(ensureSigningKey(config)).toBeUndefined();
    expect(loadSigningKey(config).keyId).toBe(created.keyId);
    const configured = cfg('configured', { key: { file: path.join(tmp, 'elsewhere', 'k') } });
    expect(() => ensureSigningKey(configured)).toThrow(expect.objectContaining({ code: 'SIGNING_KEY_MISSING' }));
    expect(() => loadSigningKey(configured)).toThrow(expect.objectContaining({ code: 'SIGNING_KEY_MISSING' }));
    expect(existsSync(path.join(tmp, 'elsewhere'))).toBe(false);
  });

  it('a private key readable by others is refused', () => {
    const config = cfg('open');
    const k = createSigningKey(config);
    chmodSync(k.privateFile, 0o644);
    expect(() => loadSigningKey(config)).toThrow(expect.objectContaining({ code: 'SIGNING_KEY_INVALID' }));
  });

  it('trust: this host\'s own public key and every signing.trust entry (one-line, PEM, file); a bad entry is an error', () => {
    const own = createSigningKey(cfg('trusting'));
    const a = generateSigningKeyPair();
    const b = generateSigningKeyPair();
    const c = generateSigningKeyPair();
    const bFile = path.join(tmp, 'b.pub');
    writeFileSync(bFile, b.publicPem);
    const config = cfg('trusting', { trust: [publicKeyLine(parsePublicKey(a.publicPem)), { file: bFile }, c.publicPem] });
    const trust = trustOf(config);
    expect([...trust.keys.keys()]).toEqual([own.keyId, ...[a, b, c].map((p) => keyIdOf(parsePublicKey(p.publicPem)))]);
    // A restore-only host: no private key, only the public one.
    rmSync(own.privateFile);
    expect([...trustOf(config).keys.keys()]).toContain(own.keyId);
    expect(() => trustOf(cfg('trusting', { trust: [{ file: path.join(tmp, 'missing.pub') }] }))).toThrow(expect.objectContaining({ code: 'SIGNING_KEY_INVALID' }));
    expect(() => trustOf(cfg('trusting', { trust: ['ed25519:AAAA'] }))).toThrow(/signing\.trust\[0\]/);
    const none = trustOf(cfg('nothing'));
    expect(none.keys.size).toBe(0);
    expect(none.none).toMatch(/this host has no signing key .* and signing.trust is empty/);
  });

  it('what the worker signs verifies with what a host trusts', () => {
    const config = cfg('roundtrip');
    const key = loadSigningKey(config);
    const bytes = Buffer.from('manifest bytes');
    expect(verifySignature('manifest', bytes, signatureFor('manifest', bytes, key), trustOf(config))).toEqual({ ok: true, keyId: key.keyId });
  });
});

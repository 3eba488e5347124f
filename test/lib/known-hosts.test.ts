import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkKnownHosts, fingerprint, hostPattern } from '../../src/lib/known-hosts.js';

const key = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyFakeKeyFakeKeyFakeKeyFakeKeyFake', 'base64');
const other = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyOtherKeyOtherKeyOtherKeyOtherK', 'base64');

function file(text: string) {
  const f = path.join(mkdtempSync(path.join(tmpdir(), 'kh-')), 'known_hosts');
  writeFileSync(f, text);
  return f;
}

describe('known_hosts', () => {
  it('prints fingerprints like ssh-keygen -lf', () => {
    expect(fingerprint(key)).toBe(`SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`);
    expect(fingerprint(key)).not.toMatch(/=$/);
  });

  it('uses [host]:port for ports other than 22', () => {
    expect(hostPattern('nas', 22)).toBe('nas');
    expect(hostPattern('nas', 2222)).toBe('[nas]:2222');
  });

  it('matches plain lines and tells a mismatch from an unknown host', () => {
    const f = file(`# comment\nnas,10.0.0.5 ssh-ed25519 ${key.toString('base64')}\n[nas]:2222 ssh-ed25519 ${other.toString('base64')}\n`);
    expect(checkKnownHosts(f, 'nas', 22, key).status).toBe('match');
    expect(checkKnownHosts(f, 'nas', 22, other).status).toBe('mismatch');
    expect(checkKnownHosts(f, 'nas', 2222, key).status).toBe('mismatch');
    expect(checkKnownHosts(f, 'elsewhere', 22, key).status).toBe('unknown');
  });

  it('matches hashed lines', () => {
    const salt = Buffer.from('0123456789abcdef0123');
    const hash = createHmac('sha1', salt).update('[127.0.0.1]:2200').digest('base64');
    const f = file(`|1|${salt.toString('base64')}|${hash} ssh-ed25519 ${key.toString('base64')}\n`);
    expect(checkKnownHosts(f, '127.0.0.1', 2200, key).status).toBe('match');
    expect(checkKnownHosts(f, '127.0.0.1', 2201, key).status).toBe('unknown');
  });

  it('refuses revoked keys even when listed', () => {
    const f = file(`@revoked * ssh-ed25519 ${key.toString('base64')}\nnas ssh-ed25519 ${key.toString('base64')}\n`);
    expect(checkKnownHosts(f, 'nas', 22, key).status).toBe('revoked');
  });
});

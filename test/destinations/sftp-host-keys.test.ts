import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SftpSession } from '../../src/destinations/sftp/index.js';
import { sftpDestinationSchema } from '../../src/destinations/sftp/schema.js';
import { startSshd, type HostKeyType, type SshdHandle } from '../helpers/sshd.js';

// Issue 14: the host key algorithms offered follow the key we know (pinned fingerprint or known_hosts entries), so a
// server known only by its ECDSA or RSA key connects, as it does with OpenSSH.

function session(sshd: SshdHandle, pin: { hostKey: string } | { knownHosts: string }): SftpSession {
  return new SftpSession('nas', sftpDestinationSchema.parse({
    type: 'sftp', host: sshd.host, port: sshd.port, user: sshd.user, privateKey: sshd.clientKeyPath, path: sshd.root, ...pin,
  }));
}

async function connects(s: SftpSession): Promise<void> {
  try {
    await s.connect();
    await s.checkWritable();
  } finally {
    s.close();
  }
}

async function refusal(s: SftpSession): Promise<Error & { code?: string }> {
  try {
    await s.connect();
  } catch (err) {
    return err as Error & { code?: string };
  } finally {
    s.close();
  }
  throw new Error('expected the connection to be refused');
}

const key = (sshd: SshdHandle, type: HostKeyType) => sshd.hostKeys.find((k) => k.type === type)!;

describe('sftp host keys of other types than ed25519', () => {
  let ecdsaOnly: SshdHandle;
  let several: SshdHandle;
  beforeAll(async () => {
    [ecdsaOnly, several] = await Promise.all([startSshd({ hostKeyTypes: ['ecdsa'] }), startSshd({ hostKeyTypes: ['ed25519', 'ecdsa', 'rsa'] })]);
  });
  afterAll(async () => {
    await Promise.all([ecdsaOnly?.stop(), several?.stop()]);
  });

  it('an sshd with only an ECDSA host key: pinned fingerprint and known_hosts both connect', async () => {
    expect(ecdsaOnly.hostKeys.map((k) => k.type)).toEqual(['ecdsa']);
    expect(ecdsaOnly.hostPublicKey).toMatch(/^ecdsa-sha2-nistp256 /);
    await connects(session(ecdsaOnly, { hostKey: ecdsaOnly.hostKeyFingerprint }));
    await connects(session(ecdsaOnly, { knownHosts: ecdsaOnly.knownHostsPath }));
  });

  it('a server that also has an ed25519 key, known only by its ECDSA or its RSA key, connects (known_hosts and pin)', async () => {
    for (const type of ['ecdsa', 'rsa'] as const) {
      const known = path.join(several.dir, `known_hosts_${type}`);
      await writeFile(known, `[127.0.0.1]:${several.port} ${key(several, type).publicKey}\n`);
      await connects(session(several, { knownHosts: known }));
      await connects(session(several, { hostKey: key(several, type).fingerprint }));
      // Again: the pin's key type is remembered, the connection goes straight to it.
      await connects(session(several, { hostKey: key(several, type).fingerprint }));
    }
  });

  it('a pin that matches none of the server\'s keys is still a mismatch, naming what the server presented', async () => {
    const err = await refusal(session(several, { hostKey: `SHA256:${'A'.repeat(43)}` }));
    expect(err.code).toBe('HOST_KEY_MISMATCH');
    expect(err.message).toContain(`the server presented ${key(several, 'ed25519').fingerprint}`);
    for (const type of ['ed25519', 'ecdsa', 'rsa'] as const) expect(err.message).toContain(key(several, type).fingerprint);
    expect(err.message).toMatch(/key types tried: ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa/);
  });

  it('known_hosts: a revoked key and a host covered only by @cert-authority are refused with the reason', async () => {
    const ec = key(several, 'ecdsa').publicKey;
    const revoked = path.join(several.dir, 'known_hosts_revoked');
    await writeFile(revoked, `[127.0.0.1]:${several.port} ${ec}\n@revoked [127.0.0.1]:* ${ec}\n`);
    const r = await refusal(session(several, { knownHosts: revoked }));
    expect(r.code).toBe('HOST_KEY_MISMATCH');
    expect(r.message).toMatch(/host key refused: the server presented SHA256:\S+, which is marked @revoked in .* \(line 2\)/);

    const ca = path.join(several.dir, 'known_hosts_ca');
    await writeFile(ca, `@cert-authority [127.0.0.1]:* ${key(several, 'ed25519').publicKey}\n`);
    const c = await refusal(session(several, { knownHosts: ca }));
    expect(c.code).toBe('HOST_KEY_MISMATCH');
    expect(c.message).toMatch(/names only a @cert-authority for this host \(line 1\); host certificates are not supported/);

    const negated = path.join(several.dir, 'known_hosts_negated');
    await writeFile(negated, `![127.0.0.1]:${several.port},* ${ec}\n`);
    const n = await refusal(session(several, { knownHosts: negated }));
    expect(n.message).toMatch(/host key refused: the host is not listed in/);
  });
});

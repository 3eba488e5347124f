import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** `SHA256:` fingerprint of a raw SSH public key blob, as `ssh-keygen -lf` prints it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The host pattern known_hosts uses: `host`, or `[host]:port` when the port is not 22. */
export function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function matchesHost(field: string, pattern: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(pattern).digest('base64') === hash;
  }
  return field.split(',').some((h) => !h.startsWith('!') && h === pattern);
}

export interface KnownHostsResult {
  /** `match`: a line for this host has this key; `mismatch`: the host is listed with other keys only; `revoked`; `unknown`. */
  status: 'match' | 'mismatch' | 'revoked' | 'unknown';
}

/** Checks a raw host key blob against an OpenSSH known_hosts file (plain and hashed lines, `@revoked`). */
export function checkKnownHosts(file: string, host: string, port: number, key: Buffer): KnownHostsResult {
  const text = readFileSync(file, 'utf8');
  const pattern = hostPattern(host, port);
  const keyB64 = key.toString('base64');
  let listed = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    let marker: string | undefined;
    if (parts[0]?.startsWith('@')) marker = parts.shift();
    const [hosts, , blob] = parts;
    if (!hosts || !blob) continue;
    if (marker === '@revoked') {
      if (blob === keyB64) return { status: 'revoked' };
      continue;
    }
    if (marker === '@cert-authority') continue;
    if (!matchesHost(hosts, pattern)) continue;
    listed = true;
    if (blob === keyB64) return { status: 'match' };
  }
  return { status: listed ? 'mismatch' : 'unknown' };
}

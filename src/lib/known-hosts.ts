import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** `SHA256:` fingerprint of a raw SSH public key blob, as `ssh-keygen -lf` prints it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The host pattern known_hosts uses: `host`, or `[host]:port` when the port is not 22. */
export function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The key type named inside a raw SSH public key blob (its first string), e.g. `ecdsa-sha2-nistp256`; '' if unreadable. */
export function keyType(key: Buffer): string {
  if (key.length < 4) return '';
  const len = key.readUInt32BE(0);
  if (len === 0 || len > 64 || key.length < 4 + len) return '';
  return key.subarray(4, 4 + len).toString('latin1');
}

/** OpenSSH's `*`/`?` wildcard match, case-insensitive (match_pattern with lower-cased names). */
function wildcard(name: string, pattern: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
  return re.test(name);
}

/**
 * How a known_hosts host field matches `lookup`, as OpenSSH's match_maybe_hashed/match_hostname decide:
 * a hashed field (`|1|salt|hash`) by HMAC-SHA1 of the name exactly; otherwise a comma list of patterns, compared
 * case-insensitively, where a matching negated pattern (`!pattern`) makes the whole line not match (fail closed).
 */
function hostFieldMatches(field: string, lookup: string): boolean {
  if (field.startsWith('|')) {
    const parts = field.split('|');
    if (parts.length !== 4 || parts[1] !== '1' || !parts[2] || !parts[3]) return false;
    // As OpenSSH: the salt and the hash are each exactly one SHA-1 digest long, else the line is invalid.
    const salt = Buffer.from(parts[2], 'base64');
    const want = Buffer.from(parts[3], 'base64');
    if (salt.length !== 20 || want.length !== 20) return false;
    return timingSafeEqual(want, createHmac('sha1', salt).update(lookup).digest());
  }
  const name = lookup.toLowerCase();
  let positive = false;
  for (const raw of field.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (!pattern || !wildcard(name, pattern)) continue;
    if (negated) return false;
    positive = true;
  }
  return positive;
}

export interface KnownHostsEntry {
  /** 1-based line number in the file (as `ssh-keygen -F` reports it). */
  line: number;
  marker?: 'revoked' | 'cert-authority';
  /** The key type field, e.g. `ssh-ed25519`. */
  keyType: string;
  /** The key blob, base64 as written. */
  key: string;
}

/** The lines of a known_hosts text that apply to `lookup` (`host` or `[host]:port`): the lines `ssh-keygen -F lookup` finds. */
export function knownHostsEntries(text: string, lookup: string): KnownHostsEntry[] {
  const out: KnownHostsEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const parts = line.split(/\s+/);
    let marker: KnownHostsEntry['marker'];
    if (parts[0]?.startsWith('@')) {
      const m = parts.shift();
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else return; // an unknown marker: OpenSSH ignores the line
    }
    const [hosts, type, key] = parts;
    if (!hosts || !type || !key) return;
    if (!hostFieldMatches(hosts, lookup)) return;
    out.push({ line: i + 1, ...(marker ? { marker } : {}), keyType: type, key });
  });
  return out;
}

export interface KnownHostsResult {
  /**
   * `match`: a line for this host has this key; `mismatch`: the host is listed with other keys only; `revoked`: a
   * `@revoked` line for this host has this key; `cert-authority`: the host is covered only by `@cert-authority` lines
   * (host certificates are not supported); `unknown`: no line for this host.
   */
  status: 'match' | 'mismatch' | 'revoked' | 'cert-authority' | 'unknown';
  /** The line that decided, when one did. */
  line?: number;
}

/** The name OpenSSH looks up for a host: lower-cased (as ssh does before reading known_hosts), `[host]:port` off port 22. */
function lookupName(host: string, port: number): string {
  return hostPattern(host.toLowerCase(), port);
}

/** Checks a raw host key blob against an OpenSSH known_hosts file (plain, wildcard, negated and hashed lines, `@revoked`). */
export function checkKnownHosts(file: string, host: string, port: number, key: Buffer): KnownHostsResult {
  const entries = knownHostsEntries(readFileSync(file, 'utf8'), lookupName(host, port));
  const keyB64 = key.toString('base64');
  const revoked = entries.find((e) => e.marker === 'revoked' && e.key === keyB64);
  if (revoked) return { status: 'revoked', line: revoked.line };
  const plain = entries.filter((e) => e.marker === undefined);
  const matched = plain.find((e) => e.key === keyB64);
  if (matched) return { status: 'match', line: matched.line };
  if (plain.length > 0) return { status: 'mismatch' };
  const ca = entries.find((e) => e.marker === 'cert-authority');
  if (ca) return { status: 'cert-authority', line: ca.line };
  return { status: 'unknown' };
}

/** The key types a known_hosts file lists for a host (plain lines only: not revoked keys, not certificate authorities). */
export function knownHostKeyTypes(file: string, host: string, port: number): string[] {
  const entries = knownHostsEntries(readFileSync(file, 'utf8'), lookupName(host, port));
  return [...new Set(entries.filter((e) => e.marker === undefined).map((e) => e.keyType))];
}

/** ssh2's host key algorithms in its order of preference, by the key type they verify. */
const ALGORITHMS_BY_KEY_TYPE: Record<string, readonly string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/** Every host key algorithm ssh2 offers by default, in its order. */
export const DEFAULT_HOST_KEY_ALGORITHMS: readonly string[] = Object.values(ALGORITHMS_BY_KEY_TYPE).flat();

/** The host key algorithms to offer when the server's key is of one of `types` (ssh2 `algorithms.serverHostKey`), in ssh2's order. */
export function hostKeyAlgorithms(types: readonly string[]): string[] {
  return DEFAULT_HOST_KEY_ALGORITHMS.filter((a) => types.some((t) => ALGORITHMS_BY_KEY_TYPE[t]?.includes(a)));
}

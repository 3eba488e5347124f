import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkKnownHosts, hostKeyAlgorithms, keyType, knownHostKeyTypes, knownHostsEntries } from '../../src/lib/known-hosts.js';

// known_hosts matching must agree with OpenSSH: `ssh-keygen -F <name> -f <file>` is the reference for every case.

let dir: string;
const keys: Record<'ed' | 'ec' | 'rsa' | 'ec2', { line: string; blob: Buffer }> = {} as never;

function hashed(name: string, salt = Buffer.from('backupctl-test-salt!')): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

/** The lines `ssh-keygen -F name -f file` reports, as "N" / "N REVOKED" / "N CA". */
function sshKeygenFind(file: string, name: string): string[] {
  let out: string;
  try {
    out = execFileSync('ssh-keygen', ['-F', name, '-f', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    out = (err as { stdout?: string }).stdout ?? ''; // exit 1: not found
  }
  return [...out.matchAll(/^# Host .* found: line (\d+) ?(REVOKED|CA)?\s*$/gm)].map((m) => (m[2] ? `${m[1]} ${m[2]}` : m[1]!));
}

function ours(text: string, name: string): string[] {
  return knownHostsEntries(text, name).map((e) => (e.marker === 'revoked' ? `${e.line} REVOKED` : e.marker === 'cert-authority' ? `${e.line} CA` : String(e.line)));
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'kh-openssh-'));
  for (const [name, type] of [['ed', 'ed25519'], ['ec', 'ecdsa'], ['rsa', 'rsa'], ['ec2', 'ecdsa']] as const) {
    const f = path.join(dir, name);
    execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-f', f]);
    const line = readFileSync(`${f}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    keys[name] = { line, blob: Buffer.from(line.split(' ')[1]!, 'base64') };
  }
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('known_hosts matching agrees with ssh-keygen -F', () => {
  it('on a table of lines and names: negation, wildcards, hashed entries, [host]:port, key types, @revoked, @cert-authority', () => {
    const { ed, ec, rsa, ec2 } = keys;
    const lines = [
      `# a comment`,
      `nas ${ed.line}`,
      `!nas,*.example.org ${ec.line}`,
      `web?.example.org ${rsa.line}`,
      `[nas]:2222,[10.0.0.5]:2222 ${ec.line}`,
      `@revoked old.example.org ${ec2.line}`,
      `@cert-authority *.corp ${ed.line}`,
      `NAS2 ${ed.line}`,
      `${hashed('hashed.example')} ${ed.line}`,
      `${hashed('[hashed.example]:2200')} ${rsa.line}`,
      `${hashed('badsalt.example', Buffer.from('a salt of 22 bytes...'))} ${ed.line}`,
      `*.lan,!printer.lan ${ec.line}`,
      `[*.lan]:* ${rsa.line}`,
      `10.0.0.? ${ed.line}`,
      `multi.example ${ed.line}`,
      `multi.example ${ec.line}`,
      `@revoked * ${rsa.line}`,
      ``,
      `   indented.example ${ed.line}`,
      `@bogus-marker bogus.example ${ed.line}`,
    ];
    const text = `${lines.join('\n')}\n`;
    const file = path.join(dir, 'known_hosts');
    writeFileSync(file, text);
    const names = [
      'nas', 'Nas', 'x.example.org', 'web1.example.org', 'web12.example.org', 'www.example.org', '[nas]:2222', '[10.0.0.5]:2222',
      '[nas]:2223', 'old.example.org', 'a.corp', 'corp', 'nas2', 'NAS2', 'hashed.example', 'Hashed.example', '[hashed.example]:2200',
      '[hashed.example]:2201', 'badsalt.example', 'box.lan', 'printer.lan', '[box.lan]:2222', '[printer.lan]:2222', '10.0.0.5', '10.0.0.55',
      'multi.example', 'indented.example', 'bogus.example', 'nowhere', '',
    ];
    const disagreements: string[] = [];
    for (const name of names) {
      const want = sshKeygenFind(file, name);
      const got = ours(text, name);
      if (JSON.stringify(want) !== JSON.stringify(got)) disagreements.push(`${JSON.stringify(name)}: ssh-keygen ${JSON.stringify(want)}, ours ${JSON.stringify(got)}`);
    }
    expect(disagreements).toEqual([]);
    // The table exercises what it claims: negations that exclude, wildcards, hashes, ports, markers.
    expect(sshKeygenFind(file, 'nas')).not.toContain('3');
    expect(sshKeygenFind(file, 'printer.lan')).not.toContain('12');
    expect(sshKeygenFind(file, 'box.lan')).toContain('12');
    expect(sshKeygenFind(file, 'hashed.example')).toContain('9');
    expect(sshKeygenFind(file, '[hashed.example]:2200')).toContain('10');
    expect(sshKeygenFind(file, 'a.corp')).toContain('7 CA');
    expect(sshKeygenFind(file, 'old.example.org')).toContain('6 REVOKED');
  });
});

describe('checkKnownHosts', () => {
  function kh(text: string): string {
    const f = path.join(dir, `kh-${Math.random().toString(36).slice(2)}`);
    writeFileSync(f, text);
    return f;
  }

  it('a negated pattern makes the line not match: fail closed, where the old code matched', () => {
    const f = kh(`!nas,* ${keys.ed.line}\n`);
    expect(checkKnownHosts(f, 'nas', 22, keys.ed.blob).status).toBe('unknown');
    expect(checkKnownHosts(f, 'other', 22, keys.ed.blob).status).toBe('match');
  });

  it('a revoked key is refused even when a plain line lists it; other keys of the host still match', () => {
    const f = kh(`nas ${keys.ec.line}\nnas ${keys.ed.line}\n@revoked nas ${keys.ec.line}\n`);
    expect(checkKnownHosts(f, 'nas', 22, keys.ec.blob)).toEqual({ status: 'revoked', line: 3 });
    expect(checkKnownHosts(f, 'nas', 22, keys.ed.blob)).toEqual({ status: 'match', line: 2 });
  });

  it('a host covered only by @cert-authority is refused as not supported; a plain line still decides', () => {
    expect(checkKnownHosts(kh(`@cert-authority *.corp ${keys.ed.line}\n`), 'nas.corp', 22, keys.ed.blob)).toEqual({ status: 'cert-authority', line: 1 });
    const both = kh(`@cert-authority *.corp ${keys.ed.line}\nnas.corp ${keys.ec.line}\n`);
    expect(checkKnownHosts(both, 'nas.corp', 22, keys.ec.blob).status).toBe('match');
    expect(checkKnownHosts(both, 'nas.corp', 22, keys.rsa.blob).status).toBe('mismatch');
  });

  it('looks the host up lower-cased, as ssh does, and with [host]:port off port 22', () => {
    const f = kh(`${hashed('nas.example')} ${keys.ed.line}\n[nas.example]:2222 ${keys.ec.line}\n`);
    expect(checkKnownHosts(f, 'NAS.example', 22, keys.ed.blob).status).toBe('match');
    expect(checkKnownHosts(f, 'nas.example', 2222, keys.ec.blob).status).toBe('match');
    expect(checkKnownHosts(f, 'nas.example', 2222, keys.ed.blob).status).toBe('mismatch');
  });
});

describe('host key algorithms', () => {
  it('come from the key types known_hosts lists for the host (not revoked keys, not CAs)', () => {
    const f = path.join(dir, 'types');
    writeFileSync(f, `[nas]:2222 ${keys.ec.line}\n[nas]:2222 ${keys.rsa.line}\n@revoked [nas]:2222 ${keys.ed.line}\n@cert-authority * ${keys.ed.line}\nother ${keys.ed.line}\n`);
    expect(knownHostKeyTypes(f, 'nas', 2222)).toEqual(['ecdsa-sha2-nistp256', 'ssh-rsa']);
    expect(hostKeyAlgorithms(knownHostKeyTypes(f, 'nas', 2222))).toEqual(['ecdsa-sha2-nistp256', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    expect(hostKeyAlgorithms(['ssh-ed25519'])).toEqual(['ssh-ed25519']);
    expect(hostKeyAlgorithms(['sk-ssh-ed25519@openssh.com'])).toEqual([]);
  });

  it('the key type is read from the key blob', () => {
    expect(keyType(keys.ec.blob)).toBe('ecdsa-sha2-nistp256');
    expect(keyType(keys.rsa.blob)).toBe('ssh-rsa');
    expect(keyType(keys.ed.blob)).toBe('ssh-ed25519');
    expect(keyType(Buffer.alloc(2))).toBe('');
  });
});

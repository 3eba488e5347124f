import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGE_RECIPIENT, ageDecryptBuffer, ageFailure, ageHeaderLength, agePlaintextSize, agePlaintextSizeAt, parseRecipients } from '../../src/lib/age.js';

// The age facts backupctl relies on, checked against the real `age` tool.

let dir: string;
let identity: string;
let recipient: string;
const age = (args: string[], input?: Buffer) => execFileSync('age', args, { input, maxBuffer: 1 << 26 });

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'backupctl-age-'));
  identity = path.join(dir, 'key.txt');
  execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' });
  recipient = execFileSync('age-keygen', ['-y', identity]).toString().trim();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('age', () => {
  it('knows a recipient (public key) from anything else', () => {
    expect(AGE_RECIPIENT.test(recipient)).toBe(true);
    expect(AGE_RECIPIENT.test(readFileSync(identity, 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-'))!)).toBe(false);
    expect(parseRecipients(`# comment\n\n${recipient}\n  ${recipient}  \nssh-ed25519 AAAA\n`)).toEqual({ recipients: [recipient, recipient], invalid: ['ssh-ed25519 AAAA'] });
  });

  it('computes the plaintext size from the ciphertext size exactly, at every chunk boundary, for one and for two recipients', () => {
    const other = execFileSync('sh', ['-c', 'age-keygen 2>/dev/null | age-keygen -y']).toString().trim();
    for (const recipients of [[recipient], [recipient, other]]) {
      for (const n of [0, 1, 65535, 65536, 65537, 2 * 65536, 2 * 65536 + 7, 300_001]) {
        const ct = age(['-e', ...recipients.flatMap((r) => ['-r', r])], Buffer.alloc(n, 1));
        const header = ageHeaderLength(ct);
        expect(header).toBeGreaterThan(0);
        expect(agePlaintextSize(ct.length, header!)).toBe(n);
      }
    }
    expect(ageHeaderLength(Buffer.from('not age'))).toBeUndefined();
    // No plaintext has a ciphertext of a header, a nonce and part of a tag.
    expect(agePlaintextSize(100 + 16 + 10, 100)).toBeUndefined();
  });

  it('reads the plaintext size of a member inside a larger file, and decrypts a small buffer', async () => {
    const ct = age(['-e', '-r', recipient], Buffer.from('hello snapshot'));
    const file = path.join(dir, 'artifact');
    writeFileSync(file, Buffer.concat([Buffer.alloc(512, 0), ct, Buffer.alloc(512, 0)]));
    expect(await agePlaintextSizeAt(file, 512, ct.length)).toBe(14);
    expect(await agePlaintextSizeAt(file, 0, ct.length)).toBeUndefined();
    const ok = await ageDecryptBuffer(identity, ct, AbortSignal.timeout(30_000));
    expect(ok.ok && ok.plaintext.toString()).toBe('hello snapshot');
    const flipped = Buffer.from(ct);
    flipped[flipped.length - 3]! ^= 1;
    const bad = await ageDecryptBuffer(identity, flipped, AbortSignal.timeout(30_000));
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(ageFailure(bad.stderr)).toBe('corrupt');
  });

  it('tells a wrong identity from a damaged stream', async () => {
    const wrong = path.join(dir, 'wrong.txt');
    execFileSync('age-keygen', ['-o', wrong], { stdio: 'ignore' });
    const ct = age(['-e', '-r', recipient], Buffer.alloc(200_000, 2));
    const r = await ageDecryptBuffer(wrong, ct, AbortSignal.timeout(30_000));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(ageFailure(r.stderr)).toBe('identity');
    const truncated = await ageDecryptBuffer(identity, ct.subarray(0, ct.length - 1000), AbortSignal.timeout(30_000));
    expect(truncated.ok).toBe(false);
    if (!truncated.ok) expect(ageFailure(truncated.stderr)).toBe('corrupt');
  });
});

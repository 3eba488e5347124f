import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupError } from '../../src/errors.js';
import { checkIdentity } from '../../src/restore/decrypt.js';

// The identity check before an encrypted chain is restored. age's verdicts while a component decrypts (a wrong
// identity, a flipped byte, a plaintext size that is not the manifest's) are tested on the streaming path, in
// stream.test.ts.

let dir: string;
let key: string;
let recipient: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'backupctl-decrypt-'));
  key = path.join(dir, 'key.txt');
  execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
  recipient = execFileSync('age-keygen', ['-y', key]).toString().trim();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const a = () => ({ path: 'daily/x.tar', encryption: { type: 'age' as const, recipients: [recipient] } });
const code = async (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof BackupError ? `${e.code}: ${e.message}` : String(e)));

describe('the identity an encrypted restore needs', () => {
  it('needs a readable identity for an encrypted chain, none for a plaintext one', async () => {
    await expect(checkIdentity([{ path: 'daily/p.tar' }], undefined)).resolves.toBeUndefined();
    expect(await code(checkIdentity([a()], undefined))).toMatch(new RegExp(`^ENCRYPTION_IDENTITY: daily/x.tar is encrypted with age to ${recipient}: no identity was given; nothing was unpacked`));
    expect(await code(checkIdentity([a()], path.join(dir, 'nope.txt')))).toMatch(/^ENCRYPTION_IDENTITY: .*the identity file \S+nope.txt cannot be read/);
    await expect(checkIdentity([a()], key)).resolves.toBeUndefined();
  });
});

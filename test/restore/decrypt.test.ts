import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupError } from '../../src/errors.js';
import { checkIdentity, decryptComponent } from '../../src/restore/decrypt.js';

let dir: string;
let key: string;
let wrong: string;
let recipient: string;
const plain = Buffer.alloc(150_000, 9);
let artifact: string;
let sealedSize: number;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'backupctl-decrypt-'));
  key = path.join(dir, 'key.txt');
  wrong = path.join(dir, 'wrong.txt');
  execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
  execFileSync('age-keygen', ['-o', wrong], { stdio: 'ignore' });
  recipient = execFileSync('age-keygen', ['-y', key]).toString().trim();
  const sealed = execFileSync('age', ['-e', '-r', recipient], { input: plain });
  sealedSize = sealed.length;
  artifact = path.join(dir, 'artifact.tar');
  writeFileSync(artifact, Buffer.concat([Buffer.alloc(512), sealed, Buffer.alloc(512)]));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const a = () => ({ path: 'daily/x.tar', encryption: { type: 'age' as const, recipients: [recipient] } });
const code = async (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof BackupError ? `${e.code}: ${e.message}` : String(e)));

describe('decrypting a component before it is unpacked', () => {
  it('needs a readable identity for an encrypted chain, none for a plaintext one', async () => {
    await expect(checkIdentity([{ path: 'daily/p.tar' }], undefined)).resolves.toBeUndefined();
    expect(await code(checkIdentity([a()], undefined))).toMatch(new RegExp(`^ENCRYPTION_IDENTITY: daily/x.tar is encrypted with age to ${recipient}: no identity was given; nothing was unpacked`));
    expect(await code(checkIdentity([a()], path.join(dir, 'nope.txt')))).toMatch(/^ENCRYPTION_IDENTITY: .*the identity file \S+nope.txt cannot be read/);
    await expect(checkIdentity([a()], key)).resolves.toBeUndefined();
  });

  it('decrypts with the right identity; refuses a wrong one, a flipped byte and a size that is not the manifest\'s, leaving no file', async () => {
    const to = path.join(dir, 'out.plain');
    const c = { file: artifact, start: 512, size: sealedSize, member: 'files.tar.zst', plaintextSize: plain.length };
    await decryptComponent(c, a(), key, to, AbortSignal.timeout(30_000));
    expect(readFileSync(to).equals(plain)).toBe(true);
    rmSync(to);

    expect(await code(decryptComponent(c, a(), wrong, to, AbortSignal.timeout(30_000)))).toMatch(/^ENCRYPTION_IDENTITY: .*the identity \S+wrong.txt opens none of them/);
    expect(existsSync(to)).toBe(false);

    expect(await code(decryptComponent({ ...c, plaintextSize: plain.length + 1 }, a(), key, to, AbortSignal.timeout(30_000)))).toMatch(/^ENCRYPTION_CORRUPT: .*decrypted to 150000 bytes, its manifest says 150001/);
    expect(existsSync(to)).toBe(false);

    const bytes = readFileSync(artifact);
    bytes[512 + sealedSize - 100]! ^= 0x10;
    const flipped = path.join(dir, 'flipped.tar');
    writeFileSync(flipped, bytes);
    expect(await code(decryptComponent({ ...c, file: flipped }, a(), key, to, AbortSignal.timeout(30_000)))).toMatch(/^ENCRYPTION_CORRUPT: restore refused: component files.tar.zst of daily\/x.tar failed decryption: age exited 1: .*failed to decrypt and authenticate/s);
    expect(existsSync(to)).toBe(false);
  });
});

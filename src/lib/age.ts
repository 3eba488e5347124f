/**
 * age (https://age-encryption.org, format v1) through the `age` command-line tool: encryption to X25519 recipients
 * (public keys only), decryption with an identity file (`-i FILE`: the path goes on the command line, never the key),
 * and the facts of the format that backupctl needs without a key (the plaintext size of a ciphertext).
 */
import { open } from 'node:fs/promises';
import { spawnProc, type Exit, type Proc } from './process.js';

/** An age X25519 recipient (public key): `age1` and 58 Bech32 characters. */
export const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;

/** The recipients in the text of a recipients file: one per line; `#` comments and blank lines skipped. */
export function parseRecipients(text: string): { recipients: string[]; invalid: string[] } {
  const recipients: string[] = [];
  const invalid: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    (AGE_RECIPIENT.test(line) ? recipients : invalid).push(line);
  }
  return { recipients, invalid };
}

/**
 * Starts `age -e -r R…` reading stdin (a pipe) and writing the file descriptor `outFd` (or a pipe). The recipients are
 * public keys: they may appear on a command line.
 */
export function spawnAgeEncrypt(recipients: readonly string[], signal: AbortSignal, outFd?: number): Proc {
  if (recipients.length === 0) throw new Error('age: no recipients');
  const args = ['-e'];
  for (const r of recipients) args.push('-r', r);
  return spawnProc('age', args, { stdin: 'pipe', stdout: outFd ?? 'pipe', signal });
}

/**
 * Starts `age -d -i IDENTITY_FILE` reading stdin (a pipe) and writing `outFd` (or a pipe). age writes plaintext as it
 * authenticates each 64 KiB chunk, and detects a truncated or altered stream only when it ends: its output is usable
 * only once it exited 0.
 */
export function spawnAgeDecrypt(identityFile: string, signal: AbortSignal, outFd?: number): Proc {
  return spawnProc('age', ['-d', '-i', identityFile], { stdin: 'pipe', stdout: outFd ?? 'pipe', signal });
}

/** Why age refused to decrypt, from its stderr: the identity opens none of the stanzas, or the stream is not authentic. */
export function ageFailure(stderr: string): 'identity' | 'corrupt' | 'other' {
  if (/no identity matched|incorrect identity|failed to read identit|no identities? (?:specified|found)|identity file/i.test(stderr)) return 'identity';
  if (/failed to decrypt and authenticate|unexpected EOF|header MAC|parse header|failed to read header|trailing data|last chunk|malformed/i.test(stderr)) return 'corrupt';
  return 'other';
}

const CHUNK = 64 * 1024;
const TAG = 16;
const NONCE = 16;
/** The most header bytes read to find its end (an artifact encrypted to many recipients has a longer header). */
const HEADER_MAX = 1 << 20;

/** The length of an age v1 header at the start of `buf` (through the `--- MAC` line), or undefined when it is not one. */
export function ageHeaderLength(buf: Buffer): number | undefined {
  if (!buf.subarray(0, 22).equals(Buffer.from('age-encryption.org/v1\n'))) return undefined;
  const mac = buf.indexOf('\n--- ');
  if (mac < 0) return undefined;
  const end = buf.indexOf('\n', mac + 1);
  return end < 0 ? undefined : end + 1;
}

/**
 * The plaintext size of an age v1 ciphertext of `size` bytes whose header is `header` bytes: a 16-byte nonce, then
 * 64 KiB chunks each followed by a 16-byte tag (the last chunk may be shorter, and is empty only for an empty
 * plaintext). Undefined when no plaintext has that ciphertext size.
 */
export function agePlaintextSize(size: number, header: number): number | undefined {
  const payload = size - header - NONCE;
  if (payload < TAG) return undefined;
  const chunks = Math.ceil(payload / (CHUNK + TAG));
  const plain = payload - chunks * TAG;
  if (plain < 0 || (plain === 0 && chunks !== 1) || (chunks > 1 && plain <= (chunks - 1) * CHUNK)) return undefined;
  return plain;
}

/** The plaintext size of the age ciphertext of `size` bytes at `start` in `file` (its header read from there). */
export async function agePlaintextSizeAt(file: string, start: number, size: number): Promise<number | undefined> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(Math.min(size, HEADER_MAX));
    const { bytesRead } = await fh.read(buf, 0, buf.length, start);
    const header = ageHeaderLength(buf.subarray(0, bytesRead));
    return header === undefined ? undefined : agePlaintextSize(size, header);
  } finally {
    await fh.close();
  }
}

/** Decrypts a small ciphertext held in memory (a GNU tar snapshot member) with an identity file. */
export async function ageDecryptBuffer(identityFile: string, data: Buffer, signal: AbortSignal): Promise<{ ok: true; plaintext: Buffer } | { ok: false; stderr: string; exit: Exit }> {
  const p = spawnAgeDecrypt(identityFile, signal);
  const chunks: Buffer[] = [];
  p.child.stdout!.on('data', (d: Buffer) => chunks.push(d));
  p.child.stdin!.end(data);
  const exit = await p.done;
  if (exit.code !== 0) return { ok: false, stderr: p.stderr(), exit };
  return { ok: true, plaintext: Buffer.concat(chunks) };
}

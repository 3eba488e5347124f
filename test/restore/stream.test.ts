import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RestoreArtifact } from '../../src/contracts/restore.js';
import { BLOCK, END_OF_ARCHIVE, padding, tarHeader } from '../../src/lib/tar.js';
import { memberRanges } from '../../src/restore/chain.js';
import { ArtifactStream, type ArtifactOutcome } from '../../src/restore/stream.js';
import { unpackComponent } from '../helpers/unpack-file.js';
import { listFiles } from '../e2e/fixture.js';
import { waitFor } from '../helpers/util.js';

// Restore streams (issue 19): the download sink unpacks each component while the artifact arrives, with real tar, zstd
// and age. The "download" here is the test handing the sink its chunks, so it can stop half way and look.

let dir: string;
let key: string;
let wrong: string;
let recipient: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'backupctl-stream-'));
  key = path.join(dir, 'key.txt');
  wrong = path.join(dir, 'wrong.txt');
  execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
  execFileSync('age-keygen', ['-o', wrong], { stdio: 'ignore' });
  recipient = execFileSync('age-keygen', ['-y', key]).toString().trim();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Bytes zstd cannot shrink much, so that the compressed component is about as large as the tree. */
const noise = (n: number, seed: number) => {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
};

interface Built { bytes: Buffer; artifact: RestoreArtifact; data: string }

/** An artifact as a backup writes it: a files component (GNU tar | zstd, optionally | age) and a MariaDB dump. */
function build(name: string, encrypt = false): Built {
  const data = path.join(dir, `${name}-data`);
  mkdirSync(data);
  for (let i = 0; i < 24; i++) writeFileSync(path.join(data, `f${String(i).padStart(2, '0')}.bin`), noise(256 * 1024, i + 1));
  const pipe = (cmd: string) => execFileSync('sh', ['-c', `${cmd}${encrypt ? ` | age -e -r ${recipient}` : ''}`], { maxBuffer: 1 << 30 });
  const files = pipe(`tar --create --file=- --directory=/ '${path.relative('/', data)}' | zstd -q -1 -c`);
  const dump = pipe(`printf 'CREATE TABLE t (a int);\\n-- Dump completed\\n' | zstd -q -c`);
  const plain = (b: Buffer) => (encrypt ? { plaintextSize: Number(execFileSync('sh', ['-c', `age -d -i '${key}' | wc -c`], { input: b }).toString().trim()) } : {});
  const components = [
    { name: 'app-files', type: 'files', member: 'app-files.tar.zst', size: files.length, sha256: sha(files), stats: {}, ...plain(files) },
    { name: 'shop-db', type: 'mysql', member: 'shop-db.sql.zst', size: dump.length, sha256: sha(dump), stats: {}, ...plain(dump) },
  ];
  const parts: Buffer[] = [];
  for (const [c, b] of [[components[0]!, files], [components[1]!, dump]] as const) parts.push(tarHeader(c.member, c.size, new Date()), b, Buffer.alloc(padding(c.size)));
  parts.push(END_OF_ARCHIVE);
  const bytes = Buffer.concat(parts);
  const artifact = {
    path: `app/${name}.tar`, workflowId: `backup-${name}`, type: 'full', slot: '2026-11-29T03:00:00Z', size: bytes.length, sha256: sha(bytes), components,
    ...(encrypt ? { encryption: { type: 'age', recipients: [recipient] } } : {}),
  } as RestoreArtifact;
  return { bytes, artifact, data };
}

/** Hands `bytes[from, to)` to the sink in chunks of `chunk` bytes, as a destination's download does. */
async function feed(sink: ArtifactStream, bytes: Buffer, from: number, to: number, chunk = 100_000): Promise<void> {
  for (let off = from; off < to; off += chunk) {
    const n = Math.min(chunk, to - off);
    const buf = sink.take(chunk);
    bytes.copy(buf, 0, off, off + n);
    await sink.update(buf, n);
  }
}

/** Streams all of `bytes` into a new directory `name` (with `identity`, for an encrypted artifact); how it ended. */
async function streamAll(artifact: RestoreArtifact, bytes: Buffer, name: string, identity?: string): Promise<ArtifactOutcome> {
  const root = path.join(dir, name);
  mkdirSync(root);
  const sink = new ArtifactStream({ artifact, root, components: false, ...(identity !== undefined ? { identity } : {}), signal: AbortSignal.timeout(30_000) });
  await feed(sink, bytes, 0, bytes.length, 65_536);
  return sink.finish();
}

/** `artifact` with component `i` recorded with `delta` more plaintext bytes than it decrypts to. */
const plaintextOff = (artifact: RestoreArtifact, i: number, delta: number): RestoreArtifact => ({
  ...artifact, components: artifact.components.map((c, j) => (j === i ? { ...c, plaintextSize: c.plaintextSize! + delta } : c)),
});

describe('restore stream', () => {
  it('unpacks while the download is still under way: files are in the tree before the rest of the artifact was sent', async () => {
    const b = build('paused');
    const root = path.join(dir, 'paused-root');
    mkdirSync(root);
    const sink = new ArtifactStream({ artifact: b.artifact, root, components: true, signal: new AbortController().signal });
    const first = memberRanges(b.artifact.components)[0]!;
    // Two thirds of the files component, then the "download" stops until the tree holds complete files.
    const half = first.start + Math.floor((first.size * 2) / 3);
    await feed(sink, b.bytes, 0, half);
    const restored = path.join(root, 'files', 'app-files', path.relative('/', b.data));
    const early = await waitFor(() => {
      const done = existsSync(restored) ? listFiles(restored).filter((f) => readFileSync(path.join(restored, f)).equals(readFileSync(path.join(b.data, f)))) : [];
      return done.length >= 4 ? done : undefined;
    }, { timeoutMs: 30_000, description: 'restored files while the download is paused' });
    expect(sink.received).toBe(half);
    expect(early.length).toBeLessThan(24);
    await feed(sink, b.bytes, half, b.bytes.length);
    const out = await sink.finish();
    expect(out.failure).toBeUndefined();
    expect(out.sha256).toBe(b.artifact.sha256);
    expect(out.parts).toEqual(b.artifact.components.map((c) => c.sha256));
    expect(out.headers).toEqual(b.artifact.components.map((c) => ({ name: c.member, size: c.size })));
    expect(listFiles(restored)).toEqual(listFiles(b.data));
    for (const f of listFiles(b.data)) expect(readFileSync(path.join(restored, f)).equals(readFileSync(path.join(b.data, f)))).toBe(true);
    expect(readFileSync(path.join(root, 'databases', 'shop-db.sql'), 'utf8')).toBe('CREATE TABLE t (a int);\n-- Dump completed\n');
  });

  it('a flipped byte late in a large component: the SHA-256 tells, although the unpack had written files already', async () => {
    const b = build('flipped');
    const r = memberRanges(b.artifact.components)[0]!;
    const bytes = Buffer.from(b.bytes);
    bytes[r.start + r.size - 2000]! ^= 0x40;
    const root = path.join(dir, 'flipped-root');
    mkdirSync(root);
    const sink = new ArtifactStream({ artifact: b.artifact, root, components: false, signal: new AbortController().signal });
    await feed(sink, bytes, 0, bytes.length);
    const out = await sink.finish();
    expect(out.sha256).toBe(sha(bytes));
    expect(out.sha256).not.toBe(b.artifact.sha256);
    // Written before the damage was known: why nothing may be renamed into place before the end of the stream.
    expect(listFiles(path.join(root, 'files', 'app-files', path.relative('/', b.data))).length).toBeGreaterThan(0);
  });

  it('encrypted: age decrypts as the bytes arrive; a flipped byte in the last chunk fails age only at the end (ENCRYPTION_CORRUPT)', async () => {
    const b = build('sealed', true);
    const ok = path.join(dir, 'sealed-root');
    mkdirSync(ok);
    const good = new ArtifactStream({ artifact: b.artifact, root: ok, components: true, identity: key, signal: new AbortController().signal });
    await feed(good, b.bytes, 0, b.bytes.length, 65_536);
    const out = await good.finish();
    expect(out.failure).toBeUndefined();
    expect(out.sha256).toBe(b.artifact.sha256);
    expect(listFiles(path.join(ok, 'files', 'app-files', path.relative('/', b.data)))).toEqual(listFiles(b.data));

    const r = memberRanges(b.artifact.components)[0]!;
    const bytes = Buffer.from(b.bytes);
    bytes[r.start + r.size - 100]! ^= 0x01;
    const bad = path.join(dir, 'sealed-bad-root');
    mkdirSync(bad);
    const sink = new ArtifactStream({ artifact: b.artifact, root: bad, components: false, identity: key, signal: new AbortController().signal });
    await feed(sink, bytes, 0, bytes.length, 65_536);
    const failed = await sink.finish();
    expect(failed.failure).toMatchObject({ code: 'ENCRYPTION_CORRUPT', message: expect.stringMatching(/^restore refused: component app-files.tar.zst of app\/sealed.tar failed decryption: age exited 1: .*failed to decrypt and authenticate/s) });
  });

  it('encrypted: an identity that opens none of the recipients is ENCRYPTION_IDENTITY; a component that decrypts (through zstd) to other than its manifest\'s plaintext size is ENCRYPTION_CORRUPT', async () => {
    const b = build('sealed-checks', true);
    const byWrong = await streamAll(b.artifact, b.bytes, 'sealed-wrong-root', wrong);
    expect(byWrong.sha256).toBe(b.artifact.sha256);
    expect(byWrong.failure).toMatchObject({ code: 'ENCRYPTION_IDENTITY', message: expect.stringMatching(new RegExp(`^app/sealed-checks.tar is encrypted with age to ${recipient}: the identity \\S+wrong.txt opens none of them`)) });

    const plain = b.artifact.components[0]!.plaintextSize!;
    for (const [delta, name] of [[1, 'sealed-more-root'], [-1, 'sealed-less-root']] as const) {
      const off = await streamAll(plaintextOff(b.artifact, 0, delta), b.bytes, name, key);
      expect(off.failure).toMatchObject({ code: 'ENCRYPTION_CORRUPT', message: `restore refused: component app-files.tar.zst of app/sealed-checks.tar decrypted to ${plain} bytes, its manifest says ${plain + delta}; nothing was unpacked` });
    }
  });

  it('an encrypted component that age writes straight into its file (no zstd): decrypted whole; a wrong identity, a size that is not the manifest\'s and a flipped byte are refused', async () => {
    const plain = Buffer.alloc(150_000, 9);
    const sealed = execFileSync('age', ['-e', '-r', recipient], { input: plain });
    const bytes = Buffer.concat([tarHeader('mongo.bin', sealed.length, new Date()), sealed, Buffer.alloc(padding(sealed.length)), END_OF_ARCHIVE]);
    const artifact = {
      path: 'app/sealed-raw.tar', workflowId: 'backup-sealed-raw', type: 'full', slot: '2026-11-29T03:00:00Z', size: bytes.length, sha256: sha(bytes),
      components: [{ name: 'mongo', type: 'command', member: 'mongo.bin', size: sealed.length, sha256: sha(sealed), stats: {}, plaintextSize: plain.length }],
      encryption: { type: 'age', recipients: [recipient] },
    } as RestoreArtifact;

    const ok = await streamAll(artifact, bytes, 'sealed-raw-root', key);
    expect(ok.failure).toBeUndefined();
    expect(readFileSync(path.join(dir, 'sealed-raw-root', 'commands', 'mongo.bin')).equals(plain)).toBe(true);

    const byWrong = await streamAll(artifact, bytes, 'sealed-raw-wrong-root', wrong);
    expect(byWrong.failure).toMatchObject({ code: 'ENCRYPTION_IDENTITY', message: expect.stringMatching(/the identity \S+wrong.txt opens none of them/) });

    const more = await streamAll(plaintextOff(artifact, 0, 1), bytes, 'sealed-raw-more-root', key);
    expect(more.failure).toMatchObject({ code: 'ENCRYPTION_CORRUPT', message: 'restore refused: component mongo.bin of app/sealed-raw.tar decrypted to 150000 bytes, its manifest says 150001; nothing was unpacked' });

    const flipped = Buffer.from(bytes);
    flipped[BLOCK + sealed.length - 100]! ^= 0x10;
    const bad = await streamAll(artifact, flipped, 'sealed-raw-flipped-root', key);
    expect(bad.failure).toMatchObject({ code: 'ENCRYPTION_CORRUPT', message: expect.stringMatching(/^restore refused: component mongo.bin of app\/sealed-raw.tar failed decryption: age exited 1: .*failed to decrypt and authenticate/s) });
  });

  it('a command component stored as it was (no zstd, no age) is written through as it arrives, and ends (also when empty)', async () => {
    const file = path.join(dir, 'raw.bin');
    const data = noise(3_000_000, 7);
    writeFileSync(file, Buffer.concat([Buffer.alloc(1000, 1), data]));
    const root = path.join(dir, 'raw-root');
    let seen = 0;
    const spec = { file, start: 1000, size: data.length, name: 'mongo', type: 'command', member: 'mongo.bin', artifactPath: 'app/raw.tar' };
    const rel = await unpackComponent(spec, root, AbortSignal.timeout(30_000), (n) => { seen += n; });
    expect(rel).toBe('commands/mongo.bin');
    expect(seen).toBe(data.length);
    expect(readFileSync(path.join(root, rel)).equals(data)).toBe(true);
    const empty = await unpackComponent({ ...spec, size: 0 }, path.join(dir, 'raw-empty'), AbortSignal.timeout(30_000), () => undefined);
    expect(readFileSync(path.join(dir, 'raw-empty', empty)).length).toBe(0);
  });

  it('a download cut short: the components it never finished are reported, their programs stopped', async () => {
    const b = build('short');
    const root = path.join(dir, 'short-root');
    mkdirSync(root);
    const sink = new ArtifactStream({ artifact: b.artifact, root, components: false, signal: new AbortController().signal });
    await feed(sink, b.bytes, 0, BLOCK + 300_000);
    const out = await sink.finish();
    expect(out.sha256).not.toBe(b.artifact.sha256);
    expect(out.failure).toBeDefined();
  });
});

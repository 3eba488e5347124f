import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RestoreArtifact } from '../../src/contracts/restore.js';
import { BLOCK, END_OF_ARCHIVE, padding, tarHeader } from '../../src/lib/tar.js';
import { memberRanges } from '../../src/restore/chain.js';
import { ArtifactStream } from '../../src/restore/stream.js';
import { unpackComponent } from '../../src/restore/unpack.js';
import { listFiles } from '../e2e/fixture.js';
import { waitFor } from '../helpers/util.js';

// Restore streams (issue 19): the download sink unpacks each component while the artifact arrives, with real tar, zstd
// and age. The "download" here is the test handing the sink its chunks, so it can stop half way and look.

let dir: string;
let key: string;
let recipient: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'backupctl-stream-'));
  key = path.join(dir, 'key.txt');
  execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
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

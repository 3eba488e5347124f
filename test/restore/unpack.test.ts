import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, copyFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RangeHasher } from '../../src/lib/range-hasher.js';
import { treeStats } from '../../src/restore/unpack.js';
import { unpackComponent, type ComponentSource } from '../helpers/unpack-file.js';
import { listFiles } from '../e2e/fixture.js';

// The unpack step against real GNU tar and zstd: a full then a differential (--listed-incremental) files component
// give the later tree, deletions included. And the fetch step's one-pass hasher of the artifact and its member ranges.

const tmp = mkdtempSync(path.join(tmpdir(), 'backupctl-unpack-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A files component as the files source writes it (paths relative to /), incremental against `snapshot`. */
function component(name: string, data: string, snapshot: string): ComponentSource {
  const file = path.join(tmp, `${name}.tar.zst`);
  execFileSync('sh', ['-c', `tar --create --file=- --listed-incremental='${snapshot}' --directory=/ '${path.relative('/', data)}' | zstd -q -c > '${file}'`]);
  const bytes = readFileSync(file);
  return { file, start: 0, size: bytes.length, name: 'app-files', type: 'files', member: 'app-files.tar.zst', artifactPath: `daily/${name}.tar` };
}

describe('unpack', () => {
  it('a full then its diff restore the changed tree: added and modified files, deleted ones gone', async () => {
    const data = path.join(tmp, 'data');
    mkdirSync(path.join(data, 'sub'), { recursive: true });
    writeFileSync(path.join(data, 'keep.txt'), 'keep');
    writeFileSync(path.join(data, 'change.txt'), 'v1');
    writeFileSync(path.join(data, 'sub', 'gone.txt'), 'to be deleted');
    const snap = path.join(tmp, 'full.snar');
    const full = component('full', data, snap);
    // The diff is taken against a copy of the full's snapshot (the baseline stays put).
    copyFileSync(snap, path.join(tmp, 'diff.snar'));
    writeFileSync(path.join(data, 'change.txt'), 'v2, longer');
    writeFileSync(path.join(data, 'sub', 'new.txt'), 'new');
    rmSync(path.join(data, 'sub', 'gone.txt'));
    const diff = component('diff', data, path.join(tmp, 'diff.snar'));

    const root = path.join(tmp, 'restore');
    mkdirSync(root);
    const signal = new AbortController().signal;
    let seen = 0;
    expect(await unpackComponent(full, root, signal, (n) => { seen += n; })).toBe('files/app-files');
    const restored = path.join(root, 'files', 'app-files', path.relative('/', data));
    expect(listFiles(restored)).toEqual(['change.txt', 'keep.txt', 'sub/gone.txt']);
    await unpackComponent(diff, root, signal, (n) => { seen += n; });
    expect(seen).toBe(full.size + diff.size);
    expect(listFiles(restored)).toEqual(['change.txt', 'keep.txt', 'sub/new.txt']);
    expect(readFileSync(path.join(restored, 'change.txt'), 'utf8')).toBe('v2, longer');
    expect(await treeStats(restored)).toEqual({ files: 3, bytes: 4 + 10 + 3 });
  });

  it.each([
    ['a files component whose name climbs out', { name: '../../victim', type: 'files', member: '../../victim.tar.zst' }],
    ['a command component whose member climbs out', { name: 'mongo', type: 'command', member: '../../../victim.bin' }],
    ['a command component with an absolute member', { name: 'mongo', type: 'command', member: '/victim.bin' }],
  ])('refuses %s before anything is removed, created or written', async (_what, c) => {
    const base = mkdtempSync(path.join(tmp, 'escape-'));
    const root = path.join(base, 'a', 'restore');
    mkdirSync(root, { recursive: true });
    const victim = path.join(base, 'victim');
    mkdirSync(victim);
    writeFileSync(path.join(victim, 'keep.txt'), 'untouched');
    writeFileSync(path.join(base, 'data.bin'), 'abc');
    const source: ComponentSource = { file: path.join(base, 'data.bin'), start: 0, size: 3, artifactPath: 'daily/x.tar', ...c };
    await expect(unpackComponent(source, root, new AbortController().signal, () => undefined)).rejects.toThrow(expect.objectContaining({ code: 'RESTORE_FAILED', permanent: true, message: expect.stringMatching(/refused before anything was written/) }));
    expect(listFiles(base)).toEqual(['data.bin', 'victim/keep.txt']);
    expect(readFileSync(path.join(victim, 'keep.txt'), 'utf8')).toBe('untouched');
    expect(listFiles(root)).toEqual([]);
  });

  it('hashes the whole stream and each member range in one pass, whatever the chunking', async () => {
    const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
    const ranges = [{ start: 512, end: 1000 }, { start: 1536, end: 250_000 }, { start: 250_001, end: 250_001 }];
    const h = new RangeHasher(ranges, 4);
    for (let off = 0; off < data.length;) {
      const n = Math.min(data.length - off, 1 + ((off * 31) % 40_000));
      const buf = h.take(40_000);
      data.copy(buf, 0, off, off + n);
      await h.update(buf, n);
      off += n;
    }
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(await h.digest()).toEqual({ digest: sha(data), parts: ranges.map((r) => sha(data.subarray(r.start, r.end))) });
  });

  it('a damaged zstd stream fails with zstd\'s message', async () => {
    const data = path.join(tmp, 'data3');
    mkdirSync(data);
    writeFileSync(path.join(data, 'a.txt'), 'a'.repeat(100_000));
    const c = component('broken', data, path.join(tmp, 'broken.snar'));
    const bytes = readFileSync(c.file);
    const mid = Math.floor(bytes.length / 2);
    bytes[mid] = bytes[mid]! ^ 0xff;
    writeFileSync(c.file, bytes);
    const root = path.join(tmp, 'restore3');
    mkdirSync(root);
    const err = await unpackComponent(c, root, new AbortController().signal, () => undefined).catch((e: unknown) => e as Error & { code?: string });
    expect((err as { code?: string }).code).toBe('RESTORE_FAILED');
    expect((err as Error).message).toMatch(/unpacking component app-files.tar.zst of daily\/broken.tar: (zstd|tar) exited/);
    expect(existsSync(root) && statSync(root).isDirectory()).toBe(true);
  });

  it('a component in the middle of an artifact: exactly its bytes are unpacked (files and a single compressed dump), and counted', async () => {
    const data = path.join(tmp, 'data4');
    mkdirSync(data);
    writeFileSync(path.join(data, 'x.txt'), 'x'.repeat(5000));
    const files = component('mid', data, path.join(tmp, 'mid.snar'));
    const dump = path.join(tmp, 'db.sql.zst');
    execFileSync('sh', ['-c', `printf 'CREATE TABLE t (a int);\n-- Dump completed\n' | zstd -q -c > '${dump}'`]);
    // junk | files component | junk | dump component | junk, as offsets in one artifact file.
    const junk = (n: number, b: number) => Buffer.alloc(n, b);
    const parts = [junk(700, 0x41), readFileSync(files.file), junk(333, 0x42), readFileSync(dump), junk(300, 0x43)];
    const artifact = path.join(tmp, 'artifact-mid.tar');
    writeFileSync(artifact, Buffer.concat(parts));
    const root = path.join(tmp, 'restore4');
    mkdirSync(root);
    let seen = 0;
    const signal = new AbortController().signal;
    await unpackComponent({ ...files, file: artifact, start: 700 }, root, signal, (n) => { seen += n; });
    expect(readFileSync(path.join(root, 'files', 'app-files', path.relative('/', data), 'x.txt'), 'utf8')).toBe('x'.repeat(5000));
    const dumpStart = 700 + parts[1]!.length + 333;
    const rel = await unpackComponent({ file: artifact, start: dumpStart, size: parts[3]!.length, name: 'db', type: 'mysql', member: 'db.sql.zst', artifactPath: 'daily/mid.tar' }, root, signal, (n) => { seen += n; });
    expect(readFileSync(path.join(root, rel), 'utf8')).toBe('CREATE TABLE t (a int);\n-- Dump completed\n');
    expect(seen).toBe(parts[1]!.length + parts[3]!.length);
  });

  it('hashes only the ranges when the whole stream is not asked for', async () => {
    const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 256));
    const h = new RangeHasher([{ start: 100, end: 9000 }], 4, false);
    const buf = h.take(10_000);
    data.copy(buf);
    await h.update(buf, data.length);
    expect(await h.digest()).toEqual({ digest: '', parts: [createHash('sha256').update(data.subarray(100, 9000)).digest('hex')] });
  });

  it('with a file descriptor, the thread stores the stream at its offsets as it hashes it; a failed write fails the stream', async () => {
    const data = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31) % 253));
    const file = path.join(tmp, 'stored.bin');
    const fd = openSync(file, 'w');
    const h = new RangeHasher([], 2, true, fd);
    for (let off = 0; off < data.length; off += 30_000) {
      const n = Math.min(30_000, data.length - off);
      const buf = h.take(30_000);
      data.copy(buf, 0, off, off + n);
      await h.update(buf, n);
    }
    expect((await h.digest()).digest).toBe(createHash('sha256').update(data).digest('hex'));
    closeSync(fd);
    expect(readFileSync(file).equals(data)).toBe(true);

    // A descriptor opened for reading: the first write fails, and so does every later update and the digest.
    const ro = openSync(file, 'r');
    const bad = new RangeHasher([], 1, true, ro);
    const updates: Promise<unknown>[] = [];
    for (let i = 0; i < 4; i++) {
      const buf = bad.take(1000);
      updates.push(bad.update(buf, 1000).then(() => 'ok', (e: unknown) => (e as NodeJS.ErrnoException).code));
    }
    const outcomes = await Promise.all(updates);
    expect(outcomes).toContain('EBADF');
    await expect(bad.digest()).rejects.toMatchObject({ code: 'EBADF' });
    await bad.destroy();
    closeSync(ro);
    expect(readFileSync(file).equals(data)).toBe(true);
  });
});

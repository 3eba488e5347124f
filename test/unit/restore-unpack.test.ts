import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, copyFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { treeStats, unpackComponent, type ComponentSource } from '../../src/restore/unpack.js';
import { listFiles } from '../e2e/fixture.js';

// The unpack step against real GNU tar and zstd: a full then a differential (--listed-incremental) files component
// give the later tree, deletions included; a component whose bytes do not match its SHA-256 is refused.

const tmp = mkdtempSync(path.join(tmpdir(), 'backupctl-unpack-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A files component as the files source writes it (paths relative to /), incremental against `snapshot`. */
function component(name: string, data: string, snapshot: string): ComponentSource {
  const file = path.join(tmp, `${name}.tar.zst`);
  execFileSync('sh', ['-c', `tar --create --file=- --listed-incremental='${snapshot}' --directory=/ '${path.relative('/', data)}' | zstd -q -c > '${file}'`]);
  const bytes = readFileSync(file);
  return { file, start: 0, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), name: 'app-files', type: 'files', member: 'app-files.tar.zst', artifactPath: `daily/${name}.tar` };
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

  it('refuses a component whose bytes do not match its manifest SHA-256, naming it and its artifact', async () => {
    const data = path.join(tmp, 'data2');
    mkdirSync(data);
    writeFileSync(path.join(data, 'a.txt'), 'a');
    const c = component('other', data, path.join(tmp, 'other.snar'));
    const root = path.join(tmp, 'restore2');
    mkdirSync(root);
    const err = await unpackComponent({ ...c, sha256: '0'.repeat(64) }, root, new AbortController().signal, () => undefined).catch((e: unknown) => e as Error & { code?: string });
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe('RESTORE_CHECKSUM_MISMATCH');
    expect((err as Error).message).toContain('component app-files.tar.zst of artifact daily/other.tar has SHA-256');
  });

  it('a damaged zstd stream fails with zstd\'s message', async () => {
    const data = path.join(tmp, 'data3');
    mkdirSync(data);
    writeFileSync(path.join(data, 'a.txt'), 'a'.repeat(100_000));
    const c = component('broken', data, path.join(tmp, 'broken.snar'));
    const bytes = readFileSync(c.file);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    writeFileSync(c.file, bytes);
    const root = path.join(tmp, 'restore3');
    mkdirSync(root);
    const err = await unpackComponent({ ...c, sha256: createHash('sha256').update(bytes).digest('hex') }, root, new AbortController().signal, () => undefined).catch((e: unknown) => e as Error & { code?: string });
    expect((err as { code?: string }).code).toBe('RESTORE_FAILED');
    expect((err as Error).message).toMatch(/unpacking component app-files.tar.zst of daily\/broken.tar: (zstd|tar) exited/);
    expect(existsSync(root) && statSync(root).isDirectory()).toBe(true);
  });
});

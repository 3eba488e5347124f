import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BLOCK, END_OF_ARCHIVE, padding, parseHeader, tarHeader } from '../../src/lib/tar.js';

describe('tar header', () => {
  it('writes members that GNU tar lists and extracts', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tar-'));
    const a = Buffer.from('hello world\n');
    const b = Buffer.alloc(1000, 7);
    const parts = [tarHeader('a.txt', a.length, new Date('2025-11-04T03:00:00Z')), a, Buffer.alloc(padding(a.length)),
      tarHeader('b.bin', b.length, new Date('2025-11-04T03:00:00Z')), b, Buffer.alloc(padding(b.length)), END_OF_ARCHIVE];
    const file = path.join(dir, 'x.tar');
    writeFileSync(file, Buffer.concat(parts));
    const list = execFileSync('tar', ['-tvf', file], { encoding: 'utf8' });
    expect(list).toMatch(/ 12 2025-11-04 \d\d:\d\d a\.txt/);
    expect(list).toMatch(/ 1000 .* b\.bin/);
    execFileSync('tar', ['-xf', file, '-C', dir]);
    expect(execFileSync('cat', [path.join(dir, 'a.txt')], { encoding: 'utf8' })).toBe('hello world\n');
  });

  it('encodes sizes of 8 GiB and more in base-256', () => {
    const h = tarHeader('big', 10 * 1024 ** 3, new Date(0));
    expect(h[124]).toBe(0x80);
    expect(h.readBigUInt64BE(128)).toBe(10n * 1024n ** 3n);
  });

  it('reads back the name and size it wrote: octal sizes up to the largest, base-256 from 8 GiB on', () => {
    const names = ['app-files.tar.zst', 'n'.repeat(100), 'données-é.sql.zst'];
    const sizes = [0, 12, 0o77777777776, 0o77777777777, 8 * 1024 ** 3, 10 * 1024 ** 3, Number.MAX_SAFE_INTEGER];
    for (const name of names) {
      for (const size of sizes) expect(parseHeader(tarHeader(name, size, new Date(0)))).toEqual({ name, size });
    }
    expect(tarHeader('x', 0o77777777776, new Date(0))[124]).not.toBe(0x80);
    expect(tarHeader('x', 0o77777777777, new Date(0))[124]).toBe(0x80);
    // A damaged base-256 size is read whole, however large: never as a small size that a manifest might list.
    const huge = Buffer.alloc(BLOCK);
    huge[124] = 0x80;
    huge[125] = 0x01;
    expect(parseHeader(huge).size).toBe(2 ** 80);
    // A header that never arrived (the block stays zero): no name, and a size no manifest has.
    expect(parseHeader(Buffer.alloc(BLOCK))).toEqual({ name: '', size: NaN });
  });

  it('a corrupted checksum: GNU tar refuses the header; reading it gives name and size all the same (the artifact\'s SHA-256 is the check)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tar-'));
    const h = tarHeader('a.txt', 3, new Date(0));
    h[150]! ^= 0x01;
    const file = path.join(dir, 'bad.tar');
    writeFileSync(file, Buffer.concat([h, Buffer.from('abc'), Buffer.alloc(padding(3)), END_OF_ARCHIVE]));
    const list = spawnSync('tar', ['-tf', file], { encoding: 'utf8' });
    expect(list.status).not.toBe(0);
    expect(list.stderr).toMatch(/does not look like a tar archive/);
    expect(parseHeader(h)).toEqual({ name: 'a.txt', size: 3 });
    rmSync(dir, { recursive: true, force: true });
  });

  it('pads to 512-byte blocks', () => {
    expect(padding(0)).toBe(0);
    expect(padding(1)).toBe(511);
    expect(padding(512)).toBe(0);
  });
});

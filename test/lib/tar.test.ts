import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { END_OF_ARCHIVE, padding, tarHeader } from '../../src/lib/tar.js';

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

  it('pads to 512-byte blocks', () => {
    expect(padding(0)).toBe(0);
    expect(padding(1)).toBe(511);
    expect(padding(512)).toBe(0);
  });
});

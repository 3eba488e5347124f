import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { insideRoot, isInside } from '../../src/lib/paths.js';

describe('path containment (path.relative, never a string prefix)', () => {
  it('joins a relative path that stays inside its root', () => {
    expect(insideRoot('/restore/tmp', 'files/app-files')).toBe('/restore/tmp/files/app-files');
    expect(insideRoot('/restore/tmp', 'databases/shop-db.sql')).toBe('/restore/tmp/databases/shop-db.sql');
    expect(insideRoot('/restore/tmp', 'a..b/c')).toBe('/restore/tmp/a..b/c');
  });

  it.each([
    ['a parent', '..'],
    ['a climb out', '../../victim'],
    ['a climb out through a folder', 'files/../../victim'],
    ['a climb that would come back', 'files/../../tmp/x'],
    ['an absolute path', '/etc/cron.d/x'],
    ['a backslash climb', 'files\\..\\..\\x'],
    ['the empty path', ''],
    ['a NUL byte', 'files/a\0b'],
  ])('refuses %s (%j) before anything is written, as a permanent error', (_what, rel) => {
    expect(() => insideRoot('/restore/tmp', rel, 'the restore path')).toThrow(expect.objectContaining({ code: 'RESTORE_FAILED', permanent: true, message: expect.stringMatching(/would leave \/restore\/tmp/) }));
  });

  it('takes a sibling that shares the root\'s prefix for outside', () => {
    expect(isInside('/mnt/nas/backups', '/mnt/nas/backups-other/x')).toBe(false);
    expect(isInside('/mnt/nas/backups', '../backups-other')).toBe(false);
    expect(isInside('/mnt/nas/backups', 'daily/2025')).toBe(true);
    expect(isInside('/mnt/nas/backups', '')).toBe(true);
    expect(isInside('/mnt/nas/backups/', 'daily/../weekly')).toBe(true);
    expect(isInside('/srv', '..x/y', path.posix)).toBe(true);
  });
});

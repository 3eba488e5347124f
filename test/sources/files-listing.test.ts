import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countListing, ListingCounter, listingStats } from '../../src/sources/files/listing.js';
import { makeTempDir, type TempDir } from '../helpers/util.js';

// The files source's count of tar's -vv listing: streamed, never one string (a listing of millions of files is larger
// than a string may be: ERR_STRING_TOO_LONG at 512 MiB, which once turned a huge tree into SOURCE_EMPTY).

let tmp: TempDir;
beforeAll(async () => { tmp = await makeTempDir('backupctl-listing-'); });
afterAll(async () => { await tmp?.cleanup(); });

describe('tar listing count', () => {
  it('counts files, hard links and their bytes; directories and links are entries only; lines split anywhere', () => {
    const text = [
      'drwxr-xr-x root/root         0 2026-11-29 13:00 srv/app/',
      '-rw-r--r-- root/root      1234 2026-11-29 13:00 srv/app/a.txt',
      'hrw-r--r-- root/root         0 2026-11-29 13:00 srv/app/b.txt link to srv/app/a.txt',
      'lrwxrwxrwx root/root         0 2026-11-29 13:00 srv/app/c -> a.txt',
      '-rw-r--r-- app/app     99999999999 2026-11-29 13:00 srv/app/name with  spaces',
      '-rw-r--r-- root/root        12 2026-11-29 13:00 srv/app/last-without-newline',
    ].join('\n');
    const whole = Buffer.from(text);
    const expected = { entries: 6, files: 4, bytes: 1234 + 99999999999 + 12 };
    for (const size of [1, 2, 7, 64, whole.length]) {
      const counter = new ListingCounter();
      for (let i = 0; i < whole.length; i += size) counter.push(whole.subarray(i, i + size));
      expect(counter.end(), `chunks of ${size}`).toEqual(expected);
    }
  });

  it('counts a listing larger than 512 MiB (more than one string can hold) as a stream', async () => {
    // 540 MiB of listing lines with long names (about 4.7 million files' worth), generated in chunks of 4 MiB.
    const line = Buffer.from(`-rw-r--r-- root/root        10 2026-11-29 13:00 srv/data/${'n'.repeat(60)}/file\n`);
    const perChunk = Math.floor((4 << 20) / line.length);
    const chunk = Buffer.concat(Array.from({ length: perChunk }, () => line));
    const chunks = Math.ceil((540 << 20) / chunk.length);
    expect(chunk.length * chunks).toBeGreaterThan(512 * 2 ** 20);
    const stats = await countListing(Readable.from((function* () { for (let i = 0; i < chunks; i++) yield chunk; })()));
    expect(stats).toEqual({ entries: perChunk * chunks, files: perChunk * chunks, bytes: 10 * perChunk * chunks });
  }, 120_000);

  it("agrees with GNU tar's own listing of a real tree", async () => {
    const dir = path.join(tmp.path, 'tree');
    await mkdir(path.join(dir, 'sub'), { recursive: true });
    await writeFile(path.join(dir, 'one.txt'), 'x'.repeat(100));
    await writeFile(path.join(dir, 'sub', 'two.txt'), 'y'.repeat(2345));
    await writeFile(path.join(dir, 'sub', 'new\nline.txt'), 'z');
    const list = path.join(tmp.path, 'tree.list');
    execFileSync('tar', ['--create', '--file=/dev/null', '-vv', `--index-file=${list}`, `--directory=${tmp.path}`, 'tree']);
    expect(await listingStats(list, 'tree')).toEqual({ entries: 5, files: 3, bytes: 100 + 2345 + 1 });
  });

  it('a listing that cannot be read fails the dump (DUMP_FAILED), never counts as zero files', async () => {
    await expect(listingStats(path.join(tmp.path, 'missing.list'), 'app')).rejects.toMatchObject({ code: 'DUMP_FAILED' });
  });
});

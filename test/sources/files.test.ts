import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilesSource } from '../../src/sources/files/index.js';
import { filesSourceSchema } from '../../src/sources/files/schema.js';
import { makeTempDir, type TempDir } from '../helpers/util.js';
import { dumpContext, dumpToFile } from './support.js';

// The files source with the real GNU tar and zstd.

let tmp: TempDir;
beforeAll(async () => { tmp = await makeTempDir('backupctl-files-src-'); });
afterAll(async () => { await tmp?.cleanup(); });

/** The member names of a dumped component (a zstd-compressed tar). */
function members(file: string): string[] {
  return execFileSync('sh', ['-c', `zstd -dc '${file}' | tar -t`], { encoding: 'utf8' }).trim().split('\n').sort();
}

describe('files source', () => {
  it('absolute exclude patterns exclude from the root, as the README example says; relative ones match anywhere', async () => {
    const app = path.join(tmp.path, 'srv', 'app');
    for (const [f, text] of [['keep.txt', 'keep'], ['cache/big.bin', 'cache'], ['x.tmp', 'tmp'], ['sub/srv/app/cache/deep.txt', 'deep']] as const) {
      await mkdir(path.dirname(path.join(app, f)), { recursive: true });
      await writeFile(path.join(app, f), text);
    }
    const staging = path.join(tmp.path, 'staging');
    await mkdir(staging);
    const source = new FilesSource(filesSourceSchema.parse({ name: 'app', type: 'files', paths: [app], exclude: ['*.tmp', path.join(app, 'cache')] }));
    const out = path.join(tmp.path, 'app.tar.zst');
    await dumpToFile(source, out, dumpContext(staging));
    const rel = path.relative('/', app);
    const files = members(out).filter((m) => !m.endsWith('/'));
    // The cache under /srv/app is gone; a folder that only looks like it deeper down is kept (anchored at the root).
    expect(files).toEqual([`${rel}/keep.txt`, `${rel}/sub/srv/app/cache/deep.txt`]);
  });
});

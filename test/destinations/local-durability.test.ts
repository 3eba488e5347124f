import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir } from '../helpers/util.js';

// The local destination makes its directory entries durable (issue 18): after the commit's link (or rename) and after
// the manifest is written, the folder itself is fsynced, so a crash right after "succeeded" cannot lose them. Seen
// with strace on the compiled code (`npm test` builds dist/ first): the system calls and the folder each fsync named.

const local = fileURLToPath(new URL('../../dist/destinations/local/index.js', import.meta.url));
let tmp: TempDir;
beforeAll(async () => { tmp = await makeTempDir('backupctl-local-durable-'); });
afterAll(async () => { await tmp?.cleanup(); });

describe('local destination durability', () => {
  it('fsyncs the folder after the commit and after the manifest write, and each new folder in its parent', () => {
    const root = path.join(tmp.path, 'backups');
    mkdirSync(root);
    const src = path.join(tmp.path, 'artifact.tar');
    writeFileSync(src, Buffer.alloc(64 * 1024, 7));
    const script = `
      const { LocalSession } = await import(${JSON.stringify(local)});
      const s = await new LocalSession('nas', { type: 'local', path: ${JSON.stringify(root)} }).connect();
      const w = { pending: 'daily/2026/11/29/1200/.a.tar.wf.tmp', final: 'daily/2026/11/29/1200/a.tar' };
      const sent = await s.stage(${JSON.stringify(src)}, w);
      await s.commit(w, { size: sent.bytes, sha256: sent.sha256 });
      process.stderr.write('MARK manifest\\n');
      await s.writeSmallFile('daily/2026/11/29/1200/a.tar.manifest.json', Buffer.from('{}'), { exclusive: true });`;
    const trace = path.join(tmp.path, 'strace.txt');
    // A file, not `node -e`: worker threads (the hasher) inherit `--input-type=module` and would read their CommonJS
    // code as a module.
    const file = path.join(tmp.path, 'durable.mjs');
    writeFileSync(file, script);
    const r = spawnSync('strace', ['-f', '-y', '-qq', '-e', 'trace=fsync,fdatasync,link,rename,unlink,mkdir,write', '-o', trace, process.execPath, file], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const calls = readFileSync(trace, 'utf8').split('\n')
      .map((l) => l.replace(/^\d+\s+/, ''))
      .filter((l) => /^(fsync|fdatasync|link|rename|unlink|mkdir)\(/.test(l) || l.includes('MARK manifest'));
    const dir = path.join(root, 'daily/2026/11/29/1200');
    // strace -f prints a call that another thread interrupts as `fsync(17</dir> <unfinished ...>`; the call was made.
    const fsyncOf = (p: string) => calls.findIndex((l, i) => i > 0 && /^f(data)?sync\(\d+<([^>]*)>(\)| <unfinished)/.exec(l)?.[2] === p);
    const dirSync = (d: string) => new RegExp(`^f(data)?sync\\(\\d+<${d.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}>(\\)| <unfinished)`);
    const after = (from: number, re: RegExp) => calls.findIndex((l, i) => i > from && re.test(l));
    // New folders: each made durable in its parent.
    for (const d of ['daily', 'daily/2026', 'daily/2026/11', 'daily/2026/11/29']) expect(fsyncOf(path.join(root, d)), `fsync of ${d}`).toBeGreaterThan(-1);
    // The commit: link to the final name, the pending name removed, then the folder flushed.
    const linked = calls.findIndex((l) => l.startsWith('link(') && l.includes(`${dir}/a.tar"`));
    expect(linked).toBeGreaterThan(-1);
    const dirSyncAfterCommit = after(linked, dirSync(dir));
    const mark = calls.findIndex((l) => l.includes('MARK manifest'));
    expect(dirSyncAfterCommit, calls.join('\n')).toBeGreaterThan(linked);
    expect(dirSyncAfterCommit).toBeLessThan(mark === -1 ? Infinity : mark);
    // The manifest: written (link of its temporary file to the name), then the folder flushed again.
    const manifestLinked = calls.findIndex((l) => l.startsWith('link(') && l.includes('a.tar.manifest.json"'));
    expect(manifestLinked).toBeGreaterThan(dirSyncAfterCommit);
    expect(after(manifestLinked, dirSync(dir)), calls.join('\n')).toBeGreaterThan(manifestLinked);
  });
});

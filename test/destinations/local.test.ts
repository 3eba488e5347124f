import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalSession } from '../../src/destinations/local/index.js';
import { RANGE_MAX_BYTES, SMALL_FILE_MAX_BYTES } from '../../src/destinations/limits.js';

// The local destination over a temporary directory: containment by path.relative, modes, size caps. No servers.

const base = mkdtempSync(path.join(tmpdir(), 'backupctl-local-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
const root = path.join(base, 'backups');
mkdirSync(root);
const d = new LocalSession('nas', { type: 'local', path: root } as never);
const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

describe('local destination', () => {
  it('refuses a path that leaves its root, a sibling with the same prefix included', async () => {
    mkdirSync(path.join(base, 'backups-other'));
    writeFileSync(path.join(base, 'backups-other', 'x'), 'not ours');
    for (const p of ['../backups-other/x', '../x', '/etc/passwd', 'daily/../../backups-other/x']) {
      await expect(d.readSmallFile(p), p).rejects.toThrow(expect.objectContaining({ code: 'DESTINATION_IO', permanent: true, message: expect.stringMatching(/leaves .*backups; refused/) }));
      await expect(d.remove(p), p).rejects.toThrow(/refused/);
    }
    await expect(d.writeSmallFile('../backups-other/y', Buffer.from('no'))).rejects.toThrow(/refused/);
    expect(statSync(path.join(base, 'backups-other', 'x')).size).toBe(8);
  });

  it('stores files 0600 and creates folders 0700, through the final rename', async () => {
    const src = path.join(base, 'artifact.tar');
    writeFileSync(src, 'data', { mode: 0o644 });
    await d.upload(src, 'daily/2025/11/04/0300/.app.tmp');
    await d.rename('daily/2025/11/04/0300/.app.tmp', 'daily/2025/11/04/0300/app.tar');
    await d.writeSmallFile('daily/2025/11/04/0300/app.tar.manifest.json', Buffer.from('{}'));
    await d.writeSmallFile('drills/app/r.json', Buffer.from('{}'));
    expect(mode(path.join(root, 'daily/2025/11/04/0300/app.tar'))).toBe('600');
    expect(mode(path.join(root, 'daily/2025/11/04/0300/app.tar.manifest.json'))).toBe('600');
    expect(mode(path.join(root, 'drills/app/r.json'))).toBe('600');
    for (const dir of ['daily', 'daily/2025', 'daily/2025/11', 'daily/2025/11/04', 'daily/2025/11/04/0300', 'drills', 'drills/app']) expect(mode(path.join(root, dir)), dir).toBe('700');
  });

  it('reads a small file only up to its cap, and a range only within its bound, before allocating', async () => {
    writeFileSync(path.join(root, 'big.json'), Buffer.alloc(SMALL_FILE_MAX_BYTES + 1, 0x20));
    await expect(d.readSmallFile('big.json')).rejects.toThrow(expect.objectContaining({ code: 'DESTINATION_IO', permanent: true, message: expect.stringMatching(/it was not read/) }));
    writeFileSync(path.join(root, 'small.json'), '{"a":1}');
    expect((await d.readSmallFile('small.json'))?.toString()).toBe('{"a":1}');
    await expect(d.readSmallFile('small.json', 3)).rejects.toThrow(/more than the 3 a small file may have/);
    expect(await d.readSmallFile('missing.json')).toBeUndefined();
    for (const [offset, length] of [[0, RANGE_MAX_BYTES + 1], [0, -1], [-1, 1], [0, 1.5], [0, Number.MAX_SAFE_INTEGER + 2]]) {
      await expect(d.readRange('small.json', offset!, length!)).rejects.toThrow(/refusing to read/);
    }
    expect((await d.readRange('small.json', 1, 3)).toString()).toBe('"a"');
  });
});

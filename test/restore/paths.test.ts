import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { restoreWorkflowId } from '../../src/contracts/restore.js';
import { unpackTempDir } from '../../src/restore/paths.js';

const at = new Date('2026-11-30T06:00:00Z');

describe('the temporary restore directory', () => {
  it('is a hidden name beside the target, naming the target and the run', () => {
    const id = restoreWorkflowId('backup-1a2b3c4d', 'app', at);
    expect(unpackTempDir('/srv/restore/app', id)).toBe(`/srv/restore/.app.${id}.restore-tmp`);
  });

  it('stays a valid file name (at most 255 bytes) with a long target and the longest deployment and job names, and differs per run', () => {
    const long = 'x'.repeat(63);
    const to = `/srv/restore/${'ü'.repeat(100)}`;
    const a = unpackTempDir(to, restoreWorkflowId(long, long, at));
    const b = unpackTempDir(to, restoreWorkflowId(long, long, new Date(at.getTime() + 1000)));
    for (const d of [a, b]) {
      expect(path.dirname(d)).toBe('/srv/restore');
      expect(Buffer.byteLength(path.basename(d))).toBeLessThanOrEqual(255);
      expect(path.basename(d)).toMatch(/^\.ü+\.[0-9a-f]{32}\.restore-tmp$/);
    }
    expect(a).not.toBe(b);
    // The same target and run: the same directory (a retried fetch, the cleanup, find it again).
    expect(unpackTempDir(to, restoreWorkflowId(long, long, at))).toBe(a);
  });
});

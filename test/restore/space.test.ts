import { statfsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RestoreArtifact } from '../../src/contracts/restore.js';
import { checkRoom, freeBytesAt, unpackedBytes } from '../../src/restore/space.js';
import { makeTempDir, type TempDir } from '../helpers/util.js';

// The restore target's and the drill scratch space's room, checked before anything is unpacked (issue 18), against
// the real filesystem's statfs.

let tmp: TempDir;
beforeAll(async () => { tmp = await makeTempDir('backupctl-space-'); });
afterAll(async () => { await tmp?.cleanup(); });

const artifact = (components: RestoreArtifact['components'], encrypted = false): RestoreArtifact => ({
  path: 'daily/a.tar', workflowId: 'w', type: 'full', slot: '2026-11-29T00:00:00Z', size: 1, sha256: 'a'.repeat(64), components,
  ...(encrypted ? { encryption: { type: 'age', recipients: ['age1x'] } } : {}),
} as RestoreArtifact);
const c = (size: number, stats: Record<string, number | string> = {}, plaintextSize?: number) => ({
  name: 'x', type: 'files', member: 'x.tar.zst', size, sha256: 'b'.repeat(64), stats, ...(plaintextSize === undefined ? {} : { plaintextSize }),
});

describe('restore space', () => {
  it('a chain unpacks to its trees\' recorded bytes, else the plaintext or stored size', () => {
    const chain = [artifact([c(100, { bytes: 5000 }), c(300, { bytes: 'n/a' })]), artifact([c(50, {}, 80)], true)];
    expect(unpackedBytes(chain)).toBe(5000 + 300 + 80);
  });

  it('the free space of a target that does not exist yet is its nearest parent\'s', async () => {
    const s = statfsSync(tmp.path);
    const free = await freeBytesAt(path.join(tmp.path, 'not', 'yet'));
    expect(Math.abs(free - s.bavail * s.bsize)).toBeLessThan(64 * 2 ** 20);
  });

  it('refuses a target with less room than the backup needs, saying how much is free and needed', async () => {
    const where = path.join(tmp.path, 'restore-here');
    const free = await freeBytesAt(where);
    await expect(checkRoom(where, 1024, 'the restore target')).resolves.toBeUndefined();
    const err = await checkRoom(where, free + 2 ** 40, 'the restore target').catch((e: unknown) => e) as { code: string; message: string; hint?: string };
    expect(err.code).toBe('RESTORE_SPACE');
    expect(err.message).toMatch(new RegExp(`^the restore target ${where.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} has .+ free, and the backup unpacks to about .+; nothing was unpacked$`));
    expect(err.hint).toMatch(/^free .+ there, or choose a target on a larger disk$/);
  });
});

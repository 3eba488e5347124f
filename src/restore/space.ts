import { statfs } from 'node:fs/promises';
import path from 'node:path';
import type { RestoreArtifact } from '../contracts/restore.js';
import { BackupError } from '../errors.js';
import { formatBytes } from '../lib/format.js';

/**
 * What a chain unpacks to, from its manifests: a component's recorded tree bytes (`stats.bytes`: the files source
 * counts them), else its plaintext size (decrypted), else its stored size. An estimate that errs high for compressed
 * database dumps' unpacked files only where the manifest recorded no more.
 */
export function unpackedBytes(chain: readonly RestoreArtifact[]): number {
  let total = 0;
  for (const a of chain) {
    for (const c of a.components) {
      const tree = Number(c.stats.bytes);
      total += Math.max(Number.isSafeInteger(tree) && tree > 0 ? tree : 0, c.plaintextSize ?? 0, c.size);
    }
  }
  return total;
}

/** Free bytes (for an unprivileged writer) on the filesystem that holds `where`, or its nearest existing parent. */
export async function freeBytesAt(where: string): Promise<number> {
  for (let dir = path.resolve(where); ; dir = path.dirname(dir)) {
    try {
      const s = await statfs(dir);
      return s.bavail * s.bsize;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(dir) === dir) throw err;
    }
  }
}

/**
 * Refuses, before anything is written, a restore whose `what` (the target, the drill's scratch space, staging) has
 * less free space than `need` bytes: a restore that fills a disk half way helps nobody, and may hurt what else lives
 * there.
 */
export async function checkRoom(where: string, need: number, what: string): Promise<void> {
  const free = await freeBytesAt(where);
  if (free < need) {
    throw new BackupError('RESTORE_SPACE', `${what} ${where} has ${formatBytes(free)} free, and the backup unpacks to about ${formatBytes(need)}; nothing was unpacked`, {
      hint: `free ${formatBytes(need - free)} there, or choose a target on a larger disk`,
    });
  }
}

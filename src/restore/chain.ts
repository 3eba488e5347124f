/**
 * Which backup a restore takes, and in what order its artifacts are unpacked. Pure logic over manifests (no I/O), so
 * that it can be tested with crafted manifests.
 */
import type { Manifest } from '../contracts/manifest.js';
import type { RestoreArtifact } from '../contracts/restore.js';
import { BackupError } from '../errors.js';
import { BLOCK, padding } from '../lib/tar.js';

/** A finalized backup: its manifest and the artifact's path relative to the destination's root. */
export interface Stored {
  path: string;
  manifest: Manifest;
}

export interface Selector {
  /** Workflow ID of the backup run. */
  backup?: string;
  /** ISO time: the newest slot at or before it. */
  at?: string;
}

/** Picks the backup: by workflow ID, else the newest slot at or before `at`, else the newest. */
export function pickBackup(stored: Stored[], sel: Selector, job: string): Stored {
  if (sel.backup !== undefined) {
    const hit = stored.find((s) => s.manifest.workflowId === sel.backup);
    if (!hit) throw new BackupError('RESTORE_NOT_FOUND', `no finalized backup of job ${job} was made by run ${sel.backup}`, { hint: 'backupctl status shows the newest backups; a file without its manifest is no backup' });
    return hit;
  }
  let limit = Infinity;
  if (sel.at !== undefined) {
    limit = Date.parse(sel.at);
    if (Number.isNaN(limit)) throw new BackupError('CONFIG_INVALID', `--at "${sel.at}" is not an ISO time (e.g. 2025-11-04T03:00:00Z)`);
  }
  let best: Stored | undefined;
  for (const s of stored) {
    const t = Date.parse(s.manifest.slot);
    if (t > limit) continue;
    // Same slot: a diff is newer than the full it is based on only if it names another base; prefer the later createdAt.
    if (!best || t > Date.parse(best.manifest.slot) || (t === Date.parse(best.manifest.slot) && s.manifest.createdAt > best.manifest.createdAt)) best = s;
  }
  if (!best) {
    throw new BackupError('RESTORE_NOT_FOUND', sel.at !== undefined ? `no finalized backup of job ${job} at or before ${sel.at}` : `no finalized backup of job ${job}`);
  }
  return best;
}

function artifactOf(s: Stored): RestoreArtifact {
  const m = s.manifest;
  return { path: s.path, workflowId: m.workflowId, type: m.type, slot: m.slot, size: m.artifact.size, sha256: m.artifact.sha256, components: m.components, ...(m.encryption ? { encryption: m.encryption } : {}) };
}

/**
 * The artifacts to unpack, base first: a full alone; a diff after the full its manifest names (`base`). The base must
 * be a finalized full with the path, size and SHA-256 the diff recorded: anything else is refused, never guessed.
 */
export function resolveChain(picked: Stored, stored: Stored[]): RestoreArtifact[] {
  const m = picked.manifest;
  if (m.type === 'full' || !m.base) {
    if (m.type === 'diff' && !m.base) throw new BackupError('RESTORE_FAILED', `the diff backup ${picked.path} has no base in its manifest; it cannot be restored on its own`);
    return [artifactOf(picked)];
  }
  const b = m.base;
  const base = stored.find((s) => s.path === b.path) ?? stored.find((s) => s.manifest.workflowId === b.workflowId && s.manifest.type === 'full');
  if (!base) {
    throw new BackupError('RESTORE_NOT_FOUND', `the diff backup ${picked.path} is based on the full ${b.path} (run ${b.workflowId}), which has no manifest on this destination (deleted, or never finalized)`, {
      hint: 'restore an older full instead (--at), or another destination (--destination)',
    });
  }
  if (base.manifest.type !== 'full') throw new BackupError('RESTORE_FAILED', `the base ${base.path} of the diff ${picked.path} is not a full backup`);
  if (base.manifest.artifact.sha256 !== b.sha256 || base.manifest.artifact.size !== b.size) {
    throw new BackupError('RESTORE_CHECKSUM_MISMATCH', `the base ${base.path} of the diff ${picked.path} is not the full the diff was taken against: its manifest says ${base.manifest.artifact.size} bytes, SHA-256 ${base.manifest.artifact.sha256}; the diff recorded ${b.size} bytes, ${b.sha256}`);
  }
  return [artifactOf(base), artifactOf(picked)];
}

/**
 * Where each component's data sits in the artifact: members in manifest order, each a 512-byte header and padded data;
 * a files component of a run with snapshots is followed by its GNU tar snapshot member (`snapshot`), which is skipped.
 */
export function memberRanges(components: RestoreArtifact['components']): { member: string; header: number; start: number; size: number }[] {
  let offset = 0;
  return components.map((c) => {
    const r = { member: c.member, header: offset, start: offset + BLOCK, size: c.size };
    offset += BLOCK + c.size + padding(c.size);
    if (c.snapshot) {
      if (c.snapshot.offset !== offset) {
        throw new BackupError('RESTORE_FAILED', `the manifest places the snapshot member ${c.snapshot.member} at byte ${c.snapshot.offset}, but the members before it end at byte ${offset}`, {
          hint: 'the manifest does not describe this artifact: restore another backup (--backup, --at)',
        });
      }
      offset += BLOCK + c.snapshot.size + padding(c.snapshot.size);
    }
    return r;
  });
}

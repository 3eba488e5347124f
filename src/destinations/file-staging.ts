/**
 * Staged writes on a filesystem destination (local, sftp): the pending write is the file `<pending>` (a hidden
 * `.<artifact>.<workflow ID>.tmp` beside the final name), hashed and flushed where it is stored, and committed by a
 * rename that never replaces an existing final file.
 */
import { BackupError } from '../errors.js';
import type { StageResult, StagedExpectation, StagedFacts, StagedWrite, UploadOptions } from './types.js';

/** What a filesystem destination offers the staged write. */
export interface FileStore {
  readonly name: string;
  readonly location: string;
  upload(localFile: string, path: string, opts?: UploadOptions): Promise<{ bytes: number; sha256: string }>;
  stat(path: string): Promise<{ size: number } | undefined>;
  sha256(path: string, opts?: UploadOptions): Promise<{ sha256: string; method: string }>;
  sync(path: string): Promise<boolean>;
  remove(path: string): Promise<boolean>;
  /** Renames `from` to `to`, failing (with any error) when `to` exists: never replaces it. */
  renameNoReplace(from: string, to: string): Promise<void>;
}

/** Writes the pending file from the beginning; the flush waits for `inspect` (beside the remote hash). */
export async function stageFile(s: FileStore, localFile: string, w: StagedWrite, opts: UploadOptions = {}): Promise<StageResult> {
  return s.upload(localFile, w.pending, { ...opts, deferSync: true });
}

/** Size, a fresh SHA-256 where the file is stored, and the flush to stable storage, hash and flush side by side. */
export async function inspectFile(s: FileStore, w: StagedWrite, opts: UploadOptions = {}): Promise<StagedFacts | undefined> {
  const st = await s.stat(w.pending);
  if (!st) return undefined;
  const [{ sha256, method }, synced] = await Promise.all([s.sha256(w.pending, opts), s.sync(w.pending)]);
  return { size: st.size, sha256, method, synced };
}

/** The final file is this write: same size and SHA-256 (hashed only when the size matches). */
async function finalIs(s: FileStore, w: StagedWrite, expected: StagedExpectation): Promise<boolean | undefined> {
  const st = await s.stat(w.final);
  if (!st) return undefined;
  return st.size === expected.size && (await s.sha256(w.final)).sha256 === expected.sha256;
}

export async function commitFile(s: FileStore, w: StagedWrite, expected: StagedExpectation): Promise<void> {
  const where = `destination "${s.name}" (${s.location})`;
  if (await s.stat(w.pending)) {
    try {
      await s.renameNoReplace(w.pending, w.final);
    } catch (err) {
      const ours = await finalIs(s, w, expected);
      if (ours === undefined) throw err;
      // A final file without a manifest: ours if an earlier attempt renamed and then crashed.
      if (!ours) throw new BackupError('DESTINATION_EXISTS', `finalize: ${where} has a file at ${w.final} that is not this backup; it was not touched`, { hint: 'remove it by hand after checking what it is' });
      await s.remove(w.pending);
    }
  } else if (!(await finalIs(s, w, expected))) {
    throw new BackupError('FINALIZE_FAILED', `finalize: the verified temporary file ${w.pending} vanished from ${where} before it could be renamed`, { permanent: true });
  }
  const st = await s.stat(w.final);
  if (!st || st.size !== expected.size) {
    throw new BackupError('FINALIZE_FAILED', `finalize: ${w.final} on ${where} has ${st ? `${st.size} bytes` : 'vanished'} after the rename, expected ${expected.size} bytes`, { permanent: true });
  }
}

export function discardFile(s: FileStore, w: StagedWrite): Promise<boolean> {
  if (!w.pending.endsWith('.tmp')) throw new Error(`refusing to remove ${w.pending}: not a temporary file`);
  return s.remove(w.pending);
}

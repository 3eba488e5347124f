/**
 * Staged writes on a filesystem destination (local, sftp): the pending write is the file `<pending>` (a hidden
 * `.<artifact>.<workflow ID>.tmp` beside the final name), hashed and flushed where it is stored, and committed by a
 * rename that never replaces an existing final file.
 */
import { BackupError } from '../errors.js';
import type { PieceSource, StageResult, StagedExpectation, StagedFacts, StagedWrite, UploadOptions } from './types.js';

/** A pending file written at offsets (stageFollowingFile). */
export interface OffsetWriter {
  /** The largest piece one write takes, and how many writes may be in flight at once. */
  readonly chunk: number;
  readonly parallel: number;
  /** Writes `len` bytes of `buf` at `pos`; resolves once the destination took them (`buf` is free again then). */
  write(buf: Buffer, len: number, pos: number): Promise<void>;
  /** Cuts the file at `size` (a piece may have gone past it) and closes it, without a flush (verify flushes). */
  finish(size: number): Promise<void>;
  /** Closes it after a failure; every write in flight is settled (answered, or failed) when it resolves. */
  abort(): Promise<void>;
}

/** What a filesystem destination offers the staged write. */
export interface FileStore {
  readonly name: string;
  readonly location: string;
  upload(localFile: string, path: string, opts?: UploadOptions): Promise<{ bytes: number; sha256: string }>;
  /** Creates (or empties) the file at `path`, mode 0600, to be written at offsets. */
  openPending(path: string): Promise<OffsetWriter>;
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

/**
 * Writes the pending file from the beginning with the pieces of an artifact that is still being written, up to the
 * writer's `parallel` writes in flight, each buffer reused once its write is done; the flush waits for `inspect`.
 */
export async function stageFollowingFile(s: FileStore, source: PieceSource, w: StagedWrite, opts: UploadOptions = {}): Promise<StageResult> {
  const writer = await s.openPending(w.pending);
  const free: Buffer[] = [];
  let inFlight = 0;
  let failure: unknown;
  let written = 0;
  let wake: (() => void) | undefined;
  const signalWake = () => { const f = wake; wake = undefined; f?.(); };
  // A write the destination never answers (a stalled connection) must not hold a cancelled upload.
  const onAbort = () => { failure ??= opts.signal?.reason ?? new Error('aborted'); signalWake(); };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const settle = async () => { while (inFlight > 0 && failure === undefined) await new Promise<void>((r) => (wake = r)); };
  try {
    for (;;) {
      while (inFlight >= writer.parallel && failure === undefined) await new Promise<void>((r) => (wake = r));
      if (failure !== undefined) break;
      const buf = free.pop() ?? Buffer.allocUnsafe(writer.chunk);
      const piece = await source.next(buf);
      if (!piece) break;
      await opts.throttle?.(piece.len, opts.signal);
      inFlight++;
      writer.write(buf, piece.len, piece.pos).then(
        () => { written += piece.len; opts.onProgress?.(written); free.push(buf); },
        (err: unknown) => { failure ??= err; },
      ).finally(() => { inFlight--; signalWake(); });
    }
    await settle();
    if (failure !== undefined) throw failure;
    const { bytes, sha256 } = await source.end();
    await writer.finish(bytes);
    return { bytes, sha256 };
  } catch (err) {
    // The writer answers or drops what is in flight, so that nothing waits for replies that never come.
    await writer.abort();
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
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

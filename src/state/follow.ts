/**
 * The staged artifact while it is being written, for the upload that follows it (the dump and the first upload run
 * side by side; README, "How a backup overlaps its steps").
 *
 * The dump appends each component after a 512-byte tar header that it reserves (zeros) and fills in once the
 * component's size is known; archive then seals the artifact with the end-of-archive blocks. Beside `artifact.tar`
 * both keep a small journal (`artifact.follow`, replaced by a rename, so never read half-written) that says which bytes
 * may be sent:
 *   - `final`: bytes [0, final) never change again;
 *   - `open`: the component being dumped. Its header is at `final` and is not final; its data starts 512 bytes later
 *     and may be sent as it lands while `streaming` (each attempt of the dump is a new `attempt`: a retry truncates the
 *     file back to the header), and up to `dataEnd` once its stages have ended;
 *   - `done`: the components whose bytes are all final, with the attempt that wrote them;
 *   - `size`: set by archive, the artifact is sealed at `size` bytes;
 *   - `boot`: the boot ID of the machine that wrote it (staging is not fsynced).
 *
 * The follower hands out pieces (an offset and its bytes): final bytes in order, then the open component's data as
 * it lands, and each reserved header at its offset once it is final, so the destination must write at offsets (SFTP,
 * a filesystem). Data sent from an attempt that a retry then replaced is sent again, from the retry. The SHA-256 is
 * taken apart from the pieces, over the final bytes in order: it is the sealed artifact's, whatever order the pieces
 * went in, and the verify step compares the stored copy against it.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { BackupError } from '../errors.js';
import { ThreadHasher } from '../lib/hasher.js';
import { BLOCK } from '../lib/tar.js';
import { ARTIFACT_FILE, bootId, checkStagingBoot } from './staging.js';

export const JOURNAL_FILE = 'artifact.follow';

export interface Journal {
  boot: string;
  final: number;
  open?: { attempt: string; streaming: boolean; dataEnd?: number };
  done: { header: number; attempt: string; dataEnd: number }[];
  size?: number;
}

/** Replaces the journal of the staging folder `dir` (the dump and archive steps). */
export function writeJournal(dir: string, j: Omit<Journal, 'boot'>): void {
  const file = path.join(dir, JOURNAL_FILE);
  try {
    writeFileSync(`${file}.new`, JSON.stringify({ boot: bootId(), ...j }), { mode: 0o600 });
    renameSync(`${file}.new`, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') throw new BackupError('STAGING_SPACE', `the staging disk is full (${dir}): the staging journal cannot be written`, { cause: err, hint: 'free space under the state folder' });
    throw new BackupError('ARCHIVE_FAILED', `cannot write the staging journal ${file}: ${(err as Error).message}`, { cause: err });
  }
}

const isOffset = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** The journal of `dir`, checked; undefined when the dump has not written one yet. */
export function readJournal(dir: string): Journal | undefined {
  const file = path.join(dir, JOURNAL_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BackupError('ARCHIVE_FAILED', `cannot read the staging journal ${file}: ${(err as Error).message}`, { cause: err });
  }
  const j = JSON.parse(text) as Journal;
  const ok = typeof j.boot === 'string' && isOffset(j.final) && Array.isArray(j.done)
    && j.done.every((d) => isOffset(d.header) && isOffset(d.dataEnd) && typeof d.attempt === 'string')
    && (j.open === undefined || (typeof j.open.attempt === 'string' && typeof j.open.streaming === 'boolean' && (j.open.dataEnd === undefined || isOffset(j.open.dataEnd))))
    && (j.size === undefined || isOffset(j.size));
  if (!ok) throw new BackupError('ARCHIVE_FAILED', `the staging journal ${file} is not valid: ${text.slice(0, 200)}`);
  return j;
}

/** The components before `offset` that the journal of `dir` has as done. */
function doneBefore(dir: string, offset: number): Journal['done'] {
  return (readJournal(dir)?.done ?? []).filter((d) => d.header < offset);
}

/**
 * The dump's word on the component whose header is at `offset`, in its order: `begin` (before the file is truncated
 * back to the header, so a follower stops trusting the previous attempt's bytes), `stream` (after the zeroed header is
 * written: data lands from offset + 512), `data` (its stages ended at `dataEnd`), `done` (header, padding and snapshot
 * are written: everything before `end` is final).
 */
export function journalComponent(dir: string, offset: number, attempt: string, state: { begin: true } | { stream: true } | { dataEnd: number } | { dataEnd: number; end: number }): void {
  const done = doneBefore(dir, offset);
  if ('end' in state) writeJournal(dir, { done: [...done, { header: offset, attempt, dataEnd: state.dataEnd }], final: state.end });
  else if ('dataEnd' in state) writeJournal(dir, { done, final: offset, open: { attempt, streaming: false, dataEnd: state.dataEnd } });
  else writeJournal(dir, { done, final: offset, open: { attempt, streaming: 'stream' in state } });
}

/** Archive sealed the artifact at `size` bytes: all of it is final. */
export function journalSealed(dir: string, size: number): void {
  writeJournal(dir, { done: readJournal(dir)?.done ?? [], final: size, size });
}

/** A piece to send: `len` bytes (at the start of the buffer given) that belong at `pos`. */
export interface Piece { pos: number; len: number }

export interface FollowOptions {
  signal?: AbortSignal;
  /** Called while the follower waits for the dump (the activity heartbeats there). */
  onWait?: () => void;
  /** How often to look again while nothing is ready. */
  pollMs?: number;
  /** Told the artifact's size once archive sealed it. */
  onSealed?: (size: number) => void;
}

/** The attempt of the component whose header is at `header`, as journal `j` tells it (undefined: not known there). */
function attemptOf(j: Journal, header: number): { attempt: string; dataEnd?: number } | undefined {
  if (j.open && j.final === header) return j.open;
  return j.done.find((d) => d.header === header);
}

/** Reads the growing artifact of the staging folder `dir` as pieces to send (see the top of this file). */
export class ArtifactFollower {
  private readonly file: string;
  private fh?: FileHandle;
  private pos = 0;
  private readonly deferred = new Set<number>();
  /** The open component whose data was sent as it landed. */
  private followed?: { header: number; attempt: string };
  private hashed = 0;
  private hashTo = 0;
  private hashing?: Promise<void>;
  private hasher?: ThreadHasher;
  private hashFh?: FileHandle;
  private sealedAt?: number;
  /** The highest `final` seen: a journal that goes back means the artifact was rewritten under the upload. */
  private finalSeen = 0;
  /** The staged file's size when last looked at. */
  private landedTo = 0;

  constructor(private readonly dir: string, private readonly opts: FollowOptions = {}) {
    this.file = path.join(dir, ARTIFACT_FILE);
  }

  /** The journal as it is now (undefined before the dump wrote its first one); checks its boot and that it never goes back. */
  private journal(): Journal | undefined {
    const j = readJournal(this.dir);
    if (j) checkStagingBoot(j.boot, `the artifact ${this.file}`);
    if (j?.size !== undefined && this.sealedAt === undefined) {
      this.sealedAt = j.size;
      this.opts.onSealed?.(j.size);
    }
    if (j && j.final < this.finalSeen) {
      throw new BackupError('ARCHIVE_FAILED', `the staged artifact ${this.file} was rewritten from ${j.final} bytes on while it was being sent (its dump ran again); the upload starts again`);
    }
    if (j) this.finalSeen = j.final;
    return j;
  }

  private async wait(): Promise<void> {
    this.opts.onWait?.();
    await new Promise((resolve) => setTimeout(resolve, this.opts.pollMs ?? 20));
  }

  /** Waits until archive sealed the artifact; its size. */
  async sealed(): Promise<number> {
    for (;;) {
      this.opts.signal?.throwIfAborted();
      const j = this.journal();
      if (j?.size !== undefined) return j.size;
      await this.wait();
    }
  }

  private async read(buf: Buffer, len: number, pos: number): Promise<number> {
    this.fh ??= await open(this.file, 'r');
    const { bytesRead } = await this.fh.read(buf, 0, len, pos);
    return bytesRead;
  }

  /** Hashes the final bytes in order, as far as the journal allows, on a thread (beside the pieces being sent). */
  private hashUpTo(final: number): void {
    this.hashTo = Math.max(this.hashTo, final);
    if (this.hashing || this.hashed >= this.hashTo) return;
    this.hasher ??= new ThreadHasher();
    const hasher = this.hasher;
    this.hashing = (async () => {
      this.hashFh ??= await open(this.file, 'r');
      while (this.hashed < this.hashTo) {
        const len = Math.min(1024 * 1024, this.hashTo - this.hashed);
        const buf = hasher.take(len);
        const { bytesRead } = await this.hashFh.read(buf, 0, len, this.hashed);
        if (bytesRead === 0) throw new BackupError('ARCHIVE_FAILED', `the staged artifact ${this.file} ends at ${this.hashed} bytes, but its journal says ${this.hashTo} are final`);
        await hasher.update(buf, bytesRead);
        this.hashed += bytesRead;
      }
    })().finally(() => { this.hashing = undefined; });
    this.hashing.catch(() => undefined);
  }

  /**
   * Takes the journal's word: data sent from an attempt that a retry replaced goes again (from the retry's data start),
   * and data past a component's end (what its dump wrote after it: header, padding, snapshot) waits until it is final.
   */
  private reconcile(j: Journal): void {
    if (!this.followed) return;
    const { header } = this.followed;
    const now = attemptOf(j, header);
    if (!now) return;
    if (now.attempt !== this.followed.attempt) {
      this.followed = { header, attempt: now.attempt };
      this.pos = Math.min(this.pos, header + BLOCK);
    }
    if (now.dataEnd !== undefined && this.pos > now.dataEnd) this.pos = now.dataEnd;
    // Once all its bytes are final, the walk goes on in order from there.
    if (j.final > header) this.followed = undefined;
  }

  /** Fills `buf` with the next piece to send; null once every byte of the sealed artifact has been handed out. */
  async next(buf: Buffer): Promise<Piece | null> {
    for (;;) {
      this.opts.signal?.throwIfAborted();
      const j = this.journal();
      if (!j) {
        await this.wait();
        continue;
      }
      this.reconcile(j);
      this.hashUpTo(j.final);
      // A held-back header that is final now.
      for (const h of this.deferred) {
        if (h + BLOCK > j.final) continue;
        this.deferred.delete(h);
        if ((await this.read(buf, BLOCK, h)) !== BLOCK) throw this.shrunk(h + BLOCK);
        return { pos: h, len: BLOCK };
      }
      if (this.pos < j.final) {
        const len = Math.min(buf.length, j.final - this.pos);
        const n = await this.read(buf, len, this.pos);
        if (n === 0) throw this.shrunk(j.final);
        const piece = { pos: this.pos, len: n };
        this.pos += n;
        return piece;
      }
      if (j.size !== undefined && this.pos >= j.size && this.deferred.size === 0) {
        if (this.pos !== j.size) throw new BackupError('ARCHIVE_FAILED', `the staged artifact ${this.file} was followed to ${this.pos} bytes, but archive sealed it at ${j.size}`);
        return null;
      }
      const piece = j.open && (j.open.streaming || j.open.dataEnd !== undefined) ? await this.landed(buf, j, j.open) : undefined;
      if (piece) return piece;
      await this.wait();
    }
  }

  /** The open component's data that has landed since the last piece, checked against the journal after reading it. */
  private async landed(buf: Buffer, j: Journal, o: NonNullable<Journal['open']>): Promise<Piece | undefined> {
    const header = j.final;
    if (this.pos <= header) {
      this.deferred.add(header);
      this.pos = header + BLOCK;
    }
    if (this.followed?.header !== header) this.followed = { header, attempt: o.attempt };
    if (this.followed.attempt !== o.attempt) return undefined;
    this.fh ??= await open(this.file, 'r');
    // While the data still streams, whole pieces only: many small writes cost the destination more than the wait.
    if (o.dataEnd === undefined && this.landedTo < this.pos + buf.length) this.landedTo = (await this.fh.stat()).size;
    const size = o.dataEnd ?? this.landedTo;
    const len = Math.min(buf.length, size - this.pos);
    if (len <= 0 || (o.dataEnd === undefined && len < buf.length)) return undefined;
    const n = await this.read(buf, len, this.pos);
    // The bytes count only if the attempt that wrote them is still the component's: a retry announces itself in the
    // journal before it truncates the file (and streams only after), so an unchanged attempt after the read means the
    // bytes are that attempt's.
    const after = this.journal();
    const still = after && attemptOf(after, header);
    if (!still || still.attempt !== o.attempt || n === 0) return undefined;
    const valid = still.dataEnd === undefined ? n : Math.min(n, still.dataEnd - this.pos);
    if (valid <= 0) return undefined;
    const piece = { pos: this.pos, len: valid };
    this.pos += valid;
    return piece;
  }

  private shrunk(expected: number): BackupError {
    return new BackupError('ARCHIVE_FAILED', `the staged artifact ${this.file} is shorter than the ${expected} bytes its journal says are final`);
  }

  /** After the last piece: the artifact's size and the SHA-256 of its bytes in order. */
  async end(): Promise<{ bytes: number; sha256: string }> {
    const size = this.sealedAt;
    if (size === undefined) throw new Error('ArtifactFollower.end() before the last piece');
    for (;;) {
      this.hashUpTo(size);
      if (!this.hashing) break;
      await this.hashing;
    }
    if (this.hashed !== size) throw new BackupError('ARCHIVE_FAILED', `the staged artifact ${this.file}: hashed ${this.hashed} of ${size} bytes`);
    this.hasher ??= new ThreadHasher();
    const sha256 = await this.hasher.digest();
    this.hasher = undefined;
    return { bytes: size, sha256 };
  }

  async close(): Promise<void> {
    this.hasher?.destroy();
    await this.hashing?.catch(() => undefined);
    await this.fh?.close();
    await this.hashFh?.close();
  }
}

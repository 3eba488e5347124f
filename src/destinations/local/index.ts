import { createHash, randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { link, mkdir, open, opendir, rename, rm, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { LocalDestinationConfig as LocalDestination } from './schema.js';
import { BackupError } from '../../errors.js';
import { DIR_MODE, FILE_MODE, LIST_MAX, SMALL_FILE_MAX_BYTES, checkRange, tooLarge, tooManyEntries } from '../limits.js';
import { commitFile, discardFile, inspectFile, stageFile, stageFollowingFile, type FileStore, type OffsetWriter } from '../file-staging.js';
import type { Capabilities, Connection, DirEntry, DownloadOptions, PieceSource, StagedExpectation, StagedWrite, UploadOptions } from '../types.js';
import { ThreadHasher } from '../../lib/hasher.js';
import { isInside } from '../../lib/paths.js';
import { probeWritable } from '../probe.js';

const CHUNK = 1024 * 1024;

function ioError(err: unknown, what: string): BackupError {
  if (err instanceof BackupError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT') return new BackupError('DESTINATION_SPACE', `${what}: the destination disk is full (${e.code})`, { cause: err, hint: 'free space on the destination or remove old backups' });
  if (e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS') return new BackupError('DESTINATION_IO', `${what}: ${e.message}`, { cause: err, permanent: true, hint: 'check that the worker user may write to the destination directory' });
  if (e.code === 'ENOENT') return new BackupError('DESTINATION_UNREACHABLE', `${what}: ${e.message}`, { cause: err, hint: 'is the share mounted?' });
  return new BackupError('DESTINATION_IO', `${what}: ${e.message}`, { cause: err });
}

/** A directory on the worker, for example a mounted NAS share. */
export class LocalSession implements Connection, FileStore {
  readonly type = 'local' as const;
  readonly location: string;
  readonly capabilities: Capabilities = { atomicRename: true, serverSideHash: true, durableSync: true, conditionalCreate: true };
  closed = false;
  constructor(readonly name: string, private readonly cfg: LocalDestination) {
    this.location = `file://${cfg.path}`;
  }

  /** `p` under the destination's root; refused unless it stays inside (by path.relative: a sibling such as `<root>-other` is outside). */
  private abs(p: string): string {
    if (!isInside(this.cfg.path, p)) {
      throw new BackupError('DESTINATION_IO', `destination "${this.name}": path ${JSON.stringify(p)} leaves ${this.cfg.path}; refused`, { permanent: true });
    }
    return path.resolve(this.cfg.path, p);
  }

  /** Creates the folders of `dir` that do not exist yet, each 0700 (folders that exist are left as they are). */
  /** Creates `dir` and its missing parents; each new entry is made durable in its parent (fsync of the parent). */
  private async mkdirs(dir: string): Promise<void> {
    const first = await mkdir(dir, { recursive: true, mode: DIR_MODE });
    if (first === undefined) return;
    for (let d = dir; ; d = path.dirname(d)) {
      await syncDir(path.dirname(d));
      if (d === first || path.dirname(d) === d) break;
    }
  }

  async connect(): Promise<this> {
    try {
      const s = await stat(this.cfg.path);
      if (!s.isDirectory()) throw new Error('not a directory');
    } catch (err) {
      throw new BackupError('DESTINATION_UNREACHABLE', `destination "${this.name}": ${this.cfg.path} is not a usable directory: ${(err as Error).message}`, {
        cause: err, hint: 'create the directory, or mount the share, before the run',
      });
    }
    return this;
  }

  async freeBytes(): Promise<number> {
    const s = await statfs(this.cfg.path);
    return s.bavail * s.bsize;
  }

  checkWritable(): Promise<void> {
    return probeWritable(this, `destination "${this.name}" (${this.location})`);
  }

  async upload(localFile: string, p: string, opts: UploadOptions = {}): Promise<{ bytes: number; sha256: string }> {
    const target = this.abs(p);
    const src = await open(localFile, 'r');
    let dst;
    try {
      await this.mkdirs(path.dirname(target));
      dst = await open(target, 'w', FILE_MODE);
    } catch (err) {
      await src.close();
      throw ioError(err, `destination "${this.name}": cannot create ${target}`);
    }
    const hasher = new ThreadHasher();
    let bytes = 0;
    try {
      for (;;) {
        opts.signal?.throwIfAborted();
        const buf = hasher.take(CHUNK);
        const { bytesRead } = await src.read(buf, 0, CHUNK, null);
        if (bytesRead === 0) break;
        await opts.throttle?.(bytesRead, opts.signal);
        let off = 0;
        while (off < bytesRead) off += (await dst.write(buf, off, bytesRead - off, bytes + off)).bytesWritten;
        bytes += bytesRead;
        await hasher.update(buf, bytesRead);
        opts.onProgress?.(bytes);
      }
      if (!opts.deferSync) await dst.sync();
      return { bytes, sha256: await hasher.digest() };
    } catch (err) {
      hasher.destroy();
      if (err instanceof BackupError || (err as Error).name === 'AbortError') throw err;
      throw ioError(err, `destination "${this.name}": writing ${target}`);
    } finally {
      await src.close();
      await dst.close();
    }
  }

  async openPending(p: string): Promise<OffsetWriter> {
    const target = this.abs(p);
    let dst: FileHandle;
    try {
      await this.mkdirs(path.dirname(target));
      dst = await open(target, 'w', FILE_MODE);
    } catch (err) {
      throw ioError(err, `destination "${this.name}": cannot create ${target}`);
    }
    let end = 0;
    const what = `destination "${this.name}": writing ${target}`;
    return {
      chunk: CHUNK, parallel: 4,
      write: async (buf, len, pos) => {
        try {
          let off = 0;
          while (off < len) off += (await dst.write(buf, off, len - off, pos + off)).bytesWritten;
          end = Math.max(end, pos + len);
        } catch (err) {
          throw ioError(err, what);
        }
      },
      finish: async (size) => {
        try {
          if (end > size) await dst.truncate(size);
        } catch (err) {
          throw ioError(err, what);
        } finally {
          await dst.close();
        }
      },
      abort: () => dst.close(),
    };
  }

  async sync(p: string): Promise<boolean> {
    let fh;
    try {
      fh = await open(this.abs(p), 'r');
      await fh.sync();
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BackupError('VERIFY_MISSING', `destination "${this.name}": ${p} does not exist`);
      throw ioError(err, `destination "${this.name}": flushing ${p}`);
    } finally {
      await fh?.close();
    }
  }

  async download(p: string, opts: DownloadOptions): Promise<{ bytes: number }> {
    let src;
    try {
      src = await open(this.abs(p), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BackupError('RESTORE_NOT_FOUND', `destination "${this.name}": ${p} does not exist`);
      throw ioError(err, `destination "${this.name}": reading ${p}`);
    }
    let bytes = 0;
    try {
      for (;;) {
        opts.signal?.throwIfAborted();
        const buf = opts.sink.take(CHUNK);
        const { bytesRead } = await src.read(buf, 0, CHUNK, bytes);
        if (bytesRead === 0) break;
        bytes += bytesRead;
        await opts.sink.update(buf, bytesRead);
        opts.onProgress?.(bytes);
      }
      return { bytes };
    } finally {
      await src.close();
    }
  }

  async stat(p: string): Promise<{ size: number } | undefined> {
    try {
      const s = await stat(this.abs(p));
      return { size: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw ioError(err, `destination "${this.name}": stat ${p}`);
    }
  }

  async sha256(p: string, opts: UploadOptions = {}): Promise<{ sha256: string; method: string }> {
    const h = createHash('sha256');
    let fh;
    try {
      fh = await open(this.abs(p), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BackupError('VERIFY_MISSING', `destination "${this.name}": ${p} does not exist`);
      throw ioError(err, `destination "${this.name}": reading ${p}`);
    }
    try {
      const buf = Buffer.allocUnsafe(CHUNK);
      let done = 0;
      for (;;) {
        opts.signal?.throwIfAborted();
        const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
        if (bytesRead === 0) break;
        h.update(buf.subarray(0, bytesRead));
        done += bytesRead;
        opts.onProgress?.(done);
      }
    } finally {
      await fh.close();
    }
    return { sha256: h.digest('hex'), method: 'read back' };
  }

  async rename(from: string, to: string): Promise<void> {
    try {
      await rename(this.abs(from), this.abs(to));
      await syncDirsOf(this.abs(from), this.abs(to));
    } catch (err) {
      throw ioError(err, `destination "${this.name}": renaming ${from} to ${to}`);
    }
  }

  stage(localFile: string, w: StagedWrite, opts?: UploadOptions) { return stageFile(this, localFile, w, opts); }
  stageFollowing(source: PieceSource, w: StagedWrite, opts?: UploadOptions) { return stageFollowingFile(this, source, w, opts); }
  inspectStaged(w: StagedWrite, opts?: UploadOptions) { return inspectFile(this, w, opts); }
  commit(w: StagedWrite, expected: StagedExpectation) { return commitFile(this, w, expected); }
  discard(w: StagedWrite) { return discardFile(this, w); }

  /**
   * A hard link to the new name, then the old one unlinked: fails with EEXIST instead of replacing. A filesystem
   * without hard links (some network shares) gets a rename after checking that the target is absent (the job lock keeps
   * a second writer of the same slot away).
   */
  async renameNoReplace(from: string, to: string): Promise<void> {
    const [a, b] = [this.abs(from), this.abs(to)];
    try {
      await link(a, b);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || !['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EMLINK'].includes(code ?? '')) throw ioError(err, `destination "${this.name}": renaming ${from} to ${to}`);
      if (await this.stat(to)) throw new BackupError('DESTINATION_EXISTS', `destination "${this.name}": ${to} exists`);
      await rename(a, b).catch((e: unknown) => { throw ioError(e, `destination "${this.name}": renaming ${from} to ${to}`); });
    }
    await unlink(a).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(e, `destination "${this.name}": removing ${from}`);
    });
    // The new name (and the old one's removal) survive a crash only once the directory is on disk: a backup reported
    // as stored must not vanish with the power.
    await syncDirsOf(a, b).catch((e: unknown) => { throw ioError(e, `destination "${this.name}": flushing the folder of ${to}`); });
  }

  async writeSmallFile(p: string, data: Buffer, opts: { exclusive?: boolean } = {}): Promise<void> {
    const target = this.abs(p);
    const tmp = `${target}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    try {
      await this.mkdirs(path.dirname(target));
      const fh = await open(tmp, 'w', FILE_MODE);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (opts.exclusive) {
        await link(tmp, target).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'EEXIST') throw new BackupError('DESTINATION_EXISTS', `destination "${this.name}": ${p} exists; it was not replaced`);
          throw err;
        });
        await unlink(tmp);
      } else {
        await rename(tmp, target);
      }
      // The manifest (or signature) is written last to say "this backup exists": its directory entry must be on disk.
      await syncDir(path.dirname(target));
    } catch (err) {
      await rm(tmp, { force: true });
      throw ioError(err, `destination "${this.name}": writing ${p}`);
    }
  }

  async readSmallFile(p: string, maxBytes = SMALL_FILE_MAX_BYTES): Promise<Buffer | undefined> {
    let fh;
    try {
      fh = await open(this.abs(p), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw ioError(err, `destination "${this.name}": reading ${p}`);
    }
    try {
      const size = (await fh.stat()).size;
      if (size > maxBytes) throw tooLarge(this.name, p, size, maxBytes);
      // Never more than the cap, even when the file grows while it is read.
      const buf = Buffer.alloc(maxBytes + 1);
      let done = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, done, buf.length - done, done);
        if (bytesRead === 0) break;
        done += bytesRead;
        if (done > maxBytes) throw tooLarge(this.name, p, done, maxBytes);
      }
      return Buffer.from(buf.subarray(0, done));
    } catch (err) {
      if (err instanceof BackupError) throw err;
      throw ioError(err, `destination "${this.name}": reading ${p}`);
    } finally {
      await fh.close();
    }
  }

  async readRange(p: string, offset: number, length: number): Promise<Buffer> {
    checkRange(this.name, p, offset, length);
    const buf = Buffer.alloc(length);
    try {
      const fh = await open(this.abs(p), 'r');
      try {
        let done = 0;
        while (done < length) {
          const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
          if (bytesRead === 0) throw new Error(`${p} ends before byte ${offset + length}`);
          done += bytesRead;
        }
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw ioError(err, `destination "${this.name}": reading ${p}`);
    }
    return buf;
  }

  async list(dir: string): Promise<DirEntry[] | undefined> {
    const full = this.abs(dir);
    try {
      // Counted as it is read: a folder of millions of entries is refused at LIST_MAX, not held in memory.
      const entries: Dirent[] = [];
      for await (const e of await opendir(full)) {
        if (entries.length === LIST_MAX) throw tooManyEntries(this.name, dir);
        entries.push(e);
      }
      return await Promise.all(entries.map(async (e) => {
        const st = await stat(path.join(full, e.name)).catch(() => undefined);
        return { name: e.name, type: e.isDirectory() ? 'dir' : e.isFile() ? 'file' : 'other', size: st?.size ?? 0, mtimeMs: st?.mtimeMs ?? 0 } as DirEntry;
      }));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw ioError(err, `destination "${this.name}": listing ${dir}`);
    }
  }

  async remove(p: string): Promise<boolean> {
    try {
      await unlink(this.abs(p));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw ioError(err, `destination "${this.name}": removing ${p}`);
    }
  }

  release(): void {}

  close(): void {
    this.closed = true;
  }
}

/**
 * fsync of a directory: makes its entries (a rename, a link, a new file or folder) durable. A filesystem that cannot
 * flush a directory (some network shares answer EINVAL or ENOTSUP) is left as it is: nothing more can be done there.
 */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    if (!['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EBADF'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    await fh.close();
  }
}

/** The directories of `from` and `to` flushed (one when they are the same). */
async function syncDirsOf(from: string, to: string): Promise<void> {
  for (const dir of new Set([path.dirname(to), path.dirname(from)])) await syncDir(dir);
}

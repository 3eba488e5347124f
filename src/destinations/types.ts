import type { z } from 'zod';
import type { SecretRef } from '../config/fields.js';
import type * as registry from './registry.js';

/** The registered destination types (src/destinations/registry.ts). */
export type DestinationType = keyof typeof registry;

/**
 * A destination stores finished backups. All paths are relative to the destination's root (POSIX `/`).
 * Errors are `BackupError`s: `permanent` ones (auth, host key, no space, permission) are never retried.
 */
export interface UploadOptions {
  signal?: AbortSignal;
  /** Called with the bytes the destination has acknowledged so far. */
  onProgress?: (bytes: number) => void;
  /**
   * Upload only: do not flush the file to stable storage at the end; the caller does it with `sync` (the verify step,
   * beside its re-read, so that the disk write and the remote hash overlap).
   */
  deferSync?: boolean;
}

/**
 * Receives a download's bytes in order, in buffers it hands out (so that they can move to a thread without a copy):
 * `take` a buffer, fill it, `update` gives it back (the caller must not touch it afterwards). The sink stores the bytes
 * (the restore's sink writes and hashes them on a thread): a destination only reads.
 */
export interface ChunkSink {
  take(size: number): Buffer;
  update(buf: Buffer, len: number): Promise<void>;
}

export interface DownloadOptions extends UploadOptions {
  sink: ChunkSink;
}

export interface DestinationSession {
  readonly name: string;
  readonly type: DestinationType;
  /** A human description, e.g. `sftp://backup@nas:22/volume1/backups`. */
  readonly location: string;
  /** Free bytes available at the root, or undefined when the destination cannot tell. */
  freeBytes(): Promise<number | undefined>;
  /** Writes, reads back and removes a small probe file under the root. */
  checkWritable(): Promise<void>;
  /**
   * Streams a local file to `path` (creating its directories, 0700), returning the SHA-256 of what was sent. The file
   * is created 0600; a rename keeps that mode.
   */
  upload(localFile: string, path: string, opts?: UploadOptions): Promise<{ bytes: number; sha256: string }>;
  /**
   * Reads the stored file at `path` and passes every byte to `opts.sink`, in order; returns the bytes read. Throws
   * RESTORE_NOT_FOUND when the file does not exist.
   */
  download(path: string, opts: DownloadOptions): Promise<{ bytes: number }>;
  stat(path: string): Promise<{ size: number } | undefined>;
  /** Flushes a stored file to stable storage (fsync). False when the destination cannot (no `fsync@openssh.com`). */
  sync(path: string): Promise<boolean>;
  /** SHA-256 of the stored file, computed where it is stored (or read back). Throws VERIFY_MISSING if absent. */
  sha256(path: string, opts?: UploadOptions): Promise<{ sha256: string; method: string }>;
  /** Atomically renames; replaces an existing target. */
  rename(from: string, to: string): Promise<void>;
  /** Writes a small file atomically (temporary name, fsync, rename), mode 0600. */
  writeSmallFile(path: string, data: Buffer): Promise<void>;
  /**
   * A small file's bytes; undefined when it does not exist. A file larger than `maxBytes` (default:
   * SMALL_FILE_MAX_BYTES in src/destinations/limits.ts) is refused with a permanent DESTINATION_IO error before its
   * bytes are read.
   */
  readSmallFile(path: string, maxBytes?: number): Promise<Buffer | undefined>;
  /**
   * `length` bytes of a stored file from `offset` (a small member of an artifact, e.g. a GNU tar snapshot); a length
   * above RANGE_MAX_BYTES (or not a whole number) is refused before anything is allocated.
   */
  readRange(path: string, offset: number, length: number): Promise<Buffer>;
  /**
   * Entries of a directory (names only, no `.` or `..`); undefined when the directory does not exist. The names are
   * the destination's word: callers read them through src/repository/names.ts and walk.ts before using one.
   */
  list(dir: string): Promise<DirEntry[] | undefined>;
  /** Removes a file; false when it did not exist. */
  remove(path: string): Promise<boolean>;
  /** Releases the session (a cached connection may stay open for reuse). */
  release(): void;
}

export interface DirEntry {
  name: string;
  type: 'file' | 'dir' | 'other';
  size: number;
  mtimeMs: number;
}

export interface OpenOptions {
  /**
   * Do not reuse the cached connection; close it and open a new one. A retried step asks for this: the connection
   * its previous attempt used may be the one that stalled (alive for TCP and keepalives, but answering nothing).
   */
  fresh?: boolean;
}

/**
 * A destination type: the module `src/destinations/<type>/plugin.ts` exports one as `plugin`, and
 * src/destinations/registry.ts lists it under its `type`.
 */
export interface DestinationPlugin<S extends DestinationSchema = DestinationSchema, C = z.output<S>> {
  readonly type: string;
  /** The config of one destination of this type (a strict zod object with a `type` literal), every field described. */
  readonly schema: S;
  /** A session on the destination `name` (a plugin may hand out a cached connection). */
  open(name: string, cfg: C, opts: OpenOptions): Promise<DestinationSession>;
  /** Closes what the plugin keeps open (worker shutdown, end of a CLI command). */
  closeAll?(): Promise<void>;
  /** Every secret reference in a config (relative `file` paths are resolved against the config file). */
  secretRefs(cfg: C): SecretRef[];
  /** Makes the config's other relative paths absolute, in place, with `abs`. */
  resolvePaths(cfg: C, abs: (p: string) => string): void;
}

/** What a destination plugin's schema must be: a zod object whose `type` is a literal. */
export type DestinationSchema = z.ZodType<{ type: string }> & z.core.$ZodTypeDiscriminable;

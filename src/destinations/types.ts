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
  /** Upload only: waits until `bytes` more may be sent (the throttle, src/destinations/throttle.ts). */
  throttle?: (bytes: number, signal?: AbortSignal) => Promise<void>;
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

/**
 * What a destination can promise; activities and workflows ask these, never the type (README, "Destinations").
 */
export interface Capabilities {
  /** The pending write becomes the final file by a rename on the server (a filesystem); false: by a commit of its own (S3). */
  readonly atomicRename: boolean;
  /** The stored bytes are hashed where they are stored (a remote hash command, the server's check of each part's SHA-256). */
  readonly serverSideHash: boolean;
  /** A stored file is flushed to stable storage (fsync) before it counts as verified. */
  readonly durableSync: boolean;
  /** A final name (artifact, manifest) is created only if absent, atomically: a second writer fails, never replaces. */
  readonly conditionalCreate: boolean;
}

/**
 * One staged write of an artifact: `pending` is what the run writes while it uploads (never visible under `final`),
 * `final` the name the committed artifact takes. Names only (relative to the destination's root): a retried or
 * restarted step finds the pending write again by them (a filesystem's `<final>.tmp` file; S3's multipart upload,
 * whose ID is recorded in a small object at `pending`).
 */
export interface StagedWrite {
  pending: string;
  final: string;
}

/** What a staged write must hold: the uploaded size and SHA-256, and the destination's own receipt if it gave one. */
export interface StagedExpectation {
  size: number;
  sha256: string;
  /** `stage`'s receipt (S3: the composite SHA-256 of the parts, `<base64>-<parts>`), when the destination gives one. */
  receipt?: string;
}

/** What a destination says about a pending write, for the verify step to compare. */
export interface StagedFacts {
  size: number;
  /** A fresh SHA-256 of the stored bytes, where the destination can hash them (serverSideHash or read back). */
  sha256?: string;
  /** The destination's receipt recomputed from what it holds (S3: from ListParts). */
  receipt?: string;
  /** How it was checked, for the run's record. */
  method: string;
  /** Flushed to stable storage (false when the destination cannot). */
  synced: boolean;
}

export interface StageResult {
  bytes: number;
  /** The SHA-256 of what was sent. */
  sha256: string;
  /** What the destination will hold in its own terms (S3: the composite SHA-256 of the parts); not a secret. */
  receipt?: string;
}

/**
 * What a following upload sends (src/state/follow.ts): pieces of an artifact that is still being written, each at its
 * offset, not necessarily in order.
 */
export interface PieceSource {
  /** Fills `buf` with the next piece and says where it belongs; null once every byte has been handed out. */
  next(buf: Buffer): Promise<{ pos: number; len: number } | null>;
  /** After the last piece: the artifact's size and the SHA-256 of its bytes in order. */
  end(): Promise<{ bytes: number; sha256: string }>;
}

export interface DestinationSession {
  readonly name: string;
  readonly type: DestinationType;
  /** A human description, e.g. `sftp://backup@nas:22/volume1/backups`. */
  readonly location: string;
  readonly capabilities: Capabilities;
  /** Free bytes available at the root, or undefined when the destination cannot tell. */
  freeBytes(): Promise<number | undefined>;
  /** Writes, reads back and removes a small probe file under the root. */
  checkWritable(): Promise<void>;
  /**
   * Starts a staged write again from the beginning (a previous pending write of the same names is discarded) and streams
   * a local file into it, returning the SHA-256 of what was sent. Nothing becomes visible under `final`.
   */
  stage(localFile: string, w: StagedWrite, opts?: UploadOptions): Promise<StageResult>;
  /**
   * Like `stage`, but from an artifact that is still being written: its pieces are written at their offsets as they
   * come. Only destinations that write at offsets have it (a filesystem, SFTP); the others are staged once the artifact
   * is sealed.
   */
  stageFollowing?(source: PieceSource, w: StagedWrite, opts?: UploadOptions): Promise<StageResult>;
  /** What the pending write holds (verify); undefined when there is none. Flushes it to stable storage where it can. */
  inspectStaged(w: StagedWrite, opts?: UploadOptions): Promise<StagedFacts | undefined>;
  /**
   * Makes the pending write appear under `final`, atomically and only if `final` is absent, then checks the final size
   * (and the receipt). Safe to repeat: a final file that is already this write (same size and hash) is accepted.
   * Throws DESTINATION_EXISTS when `final` holds something else (it is not touched), FINALIZE_FAILED when there is no
   * pending write and no such final file.
   */
  commit(w: StagedWrite, expected: StagedExpectation, opts?: UploadOptions): Promise<void>;
  /** Aborts a pending write (never touches `final`); false when there was none. Idempotent. */
  discard(w: StagedWrite): Promise<boolean>;
  /**
   * Pending writes that no staged write names any more (S3: an incomplete multipart upload without its record), older
   * than `before` (ms since the epoch); removed unless `dryRun`. Destinations whose pending writes are files have none.
   */
  sweepStray?(before: number, dryRun: boolean): Promise<{ path: string; detail: string }[]>;
  /**
   * Reads the stored file at `path` and passes every byte to `opts.sink`, in order; returns the bytes read. Throws
   * RESTORE_NOT_FOUND when the file does not exist.
   */
  download(path: string, opts: DownloadOptions): Promise<{ bytes: number }>;
  stat(path: string): Promise<{ size: number } | undefined>;
  /**
   * Writes a small file atomically (never seen half-written), mode 0600. With `exclusive`, only if it does not exist:
   * DESTINATION_EXISTS otherwise (conditionalCreate), nothing replaced.
   */
  writeSmallFile(path: string, data: Buffer, opts?: { exclusive?: boolean }): Promise<void>;
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
  /** Gives the session back (to the pool, which may keep its connection open for reuse). */
  release(): void;
}

/** A session as a plugin connects it: the pool (src/destinations/pool.ts) hands it out and closes it. */
export interface Connection extends DestinationSession {
  /** True once the connection is gone: the pool must not hand it out again. */
  readonly closed: boolean;
  close(): void;
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
  /** A new connection to the destination `name` (the pool reuses it when `reuse`). */
  connect(name: string, cfg: C): Promise<Connection>;
  /** Whether a connection is kept open and reused by later steps and runs (closed after 30 s unused). */
  readonly reuse: boolean;
  /**
   * Whether its sessions write at offsets (`stageFollowing`), so that the upload to it can follow the dump
   * (settings.uploadWhileDumping). S3 cannot: an S3 first destination is uploaded once archive sealed the artifact.
   */
  readonly follows: boolean;
  /** Bytes per second the config limits uploads to (the throttle wraps the session), if it does. */
  bandwidthLimit?(cfg: C): number | undefined;
  /** Every secret reference in a config (relative `file` paths are resolved against the config file). */
  secretRefs(cfg: C): SecretRef[];
  /** Makes the config's other relative paths absolute, in place, with `abs`. */
  resolvePaths(cfg: C, abs: (p: string) => string): void;
}

/** What a destination plugin's schema must be: a zod object whose `type` is a literal. */
export type DestinationSchema = z.ZodType<{ type: string }> & z.core.$ZodTypeDiscriminable;

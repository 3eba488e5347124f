import type { Writable } from 'node:stream';
import type { z } from 'zod';
import type { DrillServer } from '../config/schema.js';
import type { SecretRef } from '../config/fields.js';

export interface DumpContext {
  signal: AbortSignal;
  /** Staging directory of the run, for side files (listings, option files). */
  stagingDir: string;
  /**
   * Records progress when a source works for a long time without writing to `out` (PostgreSQL spools and checks each
   * database's dump before it enters the component). Optional: without it such a source writes zero-length chunks to
   * `out`, which the caller's byte counter also heartbeats on.
   */
  heartbeat?: () => void;
  /**
   * Files sources: the GNU tar snapshot file (`--listed-incremental`). Absent file: a level-0 (full) dump that creates
   * it; `differential`: a copy of the base full's snapshot, so only what changed since that full is stored.
   */
  snapshot?: { file: string; differential: boolean };
  /**
   * The descriptor behind `out`: the compress stage's input pipe (or, for a source that is not compressed, the staged
   * file or age's input). A source whose last stage is a child process (tar) gives it this as its stdout, so that the
   * bytes go to the next stage through an OS pipe instead of through the event loop; it then leaves `out` untouched.
   * Absent: write to `out`.
   */
  outputFd?: number;
}

export interface DumpOutcome {
  /** Problems that did not make the dump unusable, e.g. tar's "file changed as we read it". */
  warnings: string[];
  /** Facts recorded in the manifest (file count, bytes before compression, ...). */
  stats: Record<string, number | string>;
}

/**
 * A source writes one component's raw bytes to `out` (or to `ctx.outputFd`); the dump's compress stage
 * (src/sources/compress.ts, `zstd -T0`) compresses them unless `compress` is false. It throws a `BackupError` when the
 * dump is not usable (failed, empty, truncated); it must never hand a partial dump to the archive as if it were complete.
 */
export interface Source {
  readonly name: string;
  readonly type: string;
  /** File extension of the component inside the artifact, e.g. `tar.zst`. */
  readonly extension: string;
  /** Whether the compress stage compresses the output with zstd (then `extension` ends in `.zst`). */
  readonly compress: boolean;
  dump(out: Writable, ctx: DumpContext): Promise<DumpOutcome>;
  /** Upper bound of the bytes a dump will produce, for the space check. */
  estimate(): Promise<number>;
  /** Checks that the source can be read, for `config check`. */
  check(): Promise<string>;
}

/**
 * How a source's component is restored (README, "Restore"): where it goes under the restore directory, and how its
 * bytes become that. The mechanics (zstd, tar, byte counts) are src/restore/unpack.ts's.
 * - `incremental-tree`: a GNU tar archive made with --listed-incremental, unpacked over what the earlier artifacts of
 *   the chain left (a diff's deletions apply);
 * - `whole-tree`: a tar that is whole in every backup: it replaces what an earlier artifact unpacked;
 * - `file`: one file, decompressed when its member ends in `.zst`.
 */
export interface RestoreLayout {
  /** Path of the component `name` (tar member `member`) under the restore directory. */
  path(name: string, member: string): string;
  unpack: 'incremental-tree' | 'whole-tree' | 'file';
  /** A drill counts the restored tree's regular files and bytes (to compare them with the manifest's). */
  countFiles?: boolean;
}

/** A database a restore (`--into-databases`) or a drill loads from a restored component. */
export interface DatabaseLoad {
  /** The restore directory holding the unpacked components. */
  dir: string;
  /** The database inside the dump, and the (new) database it is loaded into. */
  database: string;
  target: string;
  /** A private folder on the worker for option files. */
  scratch: string;
  signal: AbortSignal;
  /** A drill: pg_restore without owners and privileges. */
  drill: boolean;
  /**
   * Called once this load has created `target`, before anything is loaded into it: the activity records it, so that
   * a retried load may drop what its own earlier attempt created (and never a database it did not create).
   */
  created?: () => Promise<void>;
}

/** A throwaway database server a drill started on the worker (README, "Restore drills"). */
export interface ScratchServer<C> {
  /** The source's config pointed at the throwaway server (its own account; no secret). */
  connection: C;
  /** For reports: "a throwaway MariaDB server on the worker". */
  where: string;
  /** Stops the server and removes its data. */
  stop(): Promise<void>;
}

/** A source whose components hold databases that backupctl can load into a server again. */
export interface DatabaseHooks<C> {
  /** The server's product, as reports name it ("MariaDB/MySQL", "PostgreSQL"). */
  readonly server: string;
  /**
   * The databases a component of this source holds, read from its manifest entry's stats. Node-free: the drill
   * workflow reads it too, through src/sources/databases.ts.
   */
  list(stats: Record<string, number | string>): string[];
  /** The source's connection with a drill's server override (job `drill.servers`) applied. Secrets stay references. */
  connection(cfg: C, server: DrillServer): C;
  load(cfg: C, load: DatabaseLoad): Promise<void>;
  /** Drops a drill's scratch database `target`. */
  drop(cfg: C, target: string, scratch: string): Promise<void>;
  /**
   * Starts a throwaway server of this type on the worker, from the installed server binaries, for a drill's loads
   * (the default: a drill never loads into the source's own server unless `drill.allowSourceServer`).
   */
  scratchServer(cfg: C, signal: AbortSignal): Promise<ScratchServer<C>>;
}

/**
 * A source type: the module `src/sources/<type>/plugin.ts` exports one as `plugin`, and src/sources/registry.ts lists
 * it under its `type`. Everything backupctl knows about a type is here; nothing outside the plugin's folder and the
 * registry asks which type a source is.
 */
export interface SourcePlugin<S extends SourceSchema = SourceSchema, C = z.output<S>> {
  readonly type: string;
  /** The config of one source of this type (a strict zod object with a `type` literal), every field described. */
  readonly schema: S;
  open(cfg: C): Source;
  /** Every secret reference in a config (relative `file` paths are resolved against the config file). */
  secretRefs(cfg: C): SecretRef[];
  /** Makes the config's other relative paths absolute, in place, with `abs`. */
  resolvePaths(cfg: C, abs: (p: string) => string): void;
  /**
   * A diff dumps against its base full's GNU tar snapshot (`DumpContext.snapshot`), and a diff's component holds only
   * what changed (so its size is no anomaly).
   */
  readonly incremental?: boolean;
  readonly restore: RestoreLayout;
  readonly database?: DatabaseHooks<C>;
}

/** What a source plugin's schema must be: a zod object whose `type` is a literal and that has a `name`. */
export type SourceSchema = z.ZodType<{ type: string; name: string }> & z.core.$ZodTypeDiscriminable;

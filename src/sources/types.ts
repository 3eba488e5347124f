import type { Writable } from 'node:stream';

export interface DumpContext {
  signal: AbortSignal;
  /** Staging directory of the run, for side files (listings, option files). */
  stagingDir: string;
  compressionLevel: number;
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
   * The component's file, open for appending. A source whose last stage is a child process (zstd) gives it this as
   * its stdout, so that the bytes go straight to the file instead of through the event loop; it then leaves `out`
   * untouched. Absent: write to `out`.
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
 * A source writes one component, already compressed, to `out` (or to `ctx.outputFd`). It throws a `BackupError` when the dump is not
 * usable (failed, empty, truncated); it must never hand a partial dump to the archive as if it were complete.
 */
export interface Source {
  readonly name: string;
  readonly type: string;
  /** File extension of the component inside the artifact, e.g. `tar.zst`. */
  readonly extension: string;
  dump(out: Writable, ctx: DumpContext): Promise<DumpOutcome>;
  /** Upper bound of the bytes a dump will produce, for the space check. */
  estimate(): Promise<number>;
  /** Checks that the source can be read, for `config check`. */
  check(): Promise<string>;
}

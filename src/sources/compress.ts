import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackupError } from '../errors.js';
import { describeExit, endWritable, lastLines, pipeFd, spawnZstd, type Exit } from '../lib/process.js';
import type { DumpContext, DumpOutcome, Source } from './types.js';

/** Where a component's (compressed) bytes go: a stream, and, when there is one, the file descriptor behind it. */
export interface StageTarget {
  out: Writable;
  /**
   * An OS-level descriptor of the same target (the staged file, or age's stdin pipe): the last process of the chain
   * writes it directly, so the bytes do not pass through the event loop; `out` is then left to the caller to end.
   */
  fd?: number;
}

/**
 * The source and compress stages of a component: the source writes its raw bytes into `zstd -q -c -T0 -<level>`
 * (through an OS pipe: its last process gets the pipe's descriptor as `ctx.outputFd`), and zstd writes `target.fd`
 * (or a pipe into `target.out`). A source whose output is not to be compressed (`compress` false) writes the target
 * itself. The dump activity and the source tests both dump through here.
 *
 * Failures: the target failing (a full disk under `out`) is the error; else zstd dying on its own (not killed after
 * another failure) is `DUMP_FAILED` "zstd exited N: <stderr>", since the source then sees only a broken pipe; else the
 * source's own error. Cancellation (`ctx.signal`) and any failure kill zstd; the source kills its own processes.
 */
export async function dumpCompressed(source: Source, target: StageTarget, ctx: DumpContext & { compressionLevel: number }): Promise<DumpOutcome> {
  const { compressionLevel, ...sourceCtx } = ctx;
  if (!source.compress) return source.dump(target.out, { ...sourceCtx, ...(target.fd !== undefined ? { outputFd: target.fd } : {}) });
  // One signal for every stage: the caller's cancellation, zstd dying on its own, or the target failing stops them all.
  const local = new AbortController();
  const abort = (reason?: unknown) => { if (!local.signal.aborted) local.abort(reason); };
  const cancel = () => abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', cancel, { once: true });
  if (ctx.signal.aborted) cancel();
  const zstd = spawnZstd(compressionLevel, local.signal, target.fd);
  // zstd ending badly before anything else failed (killed by SIGPIPE when age stops reading, say) is the cause.
  let zstdFirst = false;
  zstd.done.then((exit) => {
    if (exit.code === 0 || local.signal.aborted) return;
    zstdFirst = true;
    abort(new Error(`zstd ${describeExit(exit)}`));
  }, (e: unknown) => abort(e));
  const input = zstd.child.stdin as Writable;
  const inputFd = pipeFd(input);
  let targetError: { error: unknown } | undefined;
  const piped = target.fd === undefined
    ? pipeline(zstd.child.stdout as Readable, target.out, { signal: local.signal }).catch((error: unknown) => {
      // An abort (cancellation, zstd or the source failing) also ends this pipeline: only a failure of its own counts.
      if (!local.signal.aborted) targetError ??= { error };
      abort(error);
    })
    : Promise.resolve();
  const failed = (exit: Exit | undefined) => (exit && exit.code !== null && exit.code !== 0 ? exit : undefined);
  try {
    let outcome: DumpOutcome;
    try {
      outcome = await source.dump(input, { ...sourceCtx, signal: local.signal, ...(inputFd !== undefined ? { outputFd: inputFd } : {}) });
      // The source's last process wrote the pipe by its descriptor (or the source ended `input`): close this end, so
      // that zstd sees the end of its input.
      await endWritable(input);
    } catch (err) {
      input.destroy();
      // Why the source failed: the target, or zstd dying on its own (the source then sees EPIPE), before the source.
      const exit = await Promise.race([zstd.done.catch(() => undefined), new Promise<undefined>((resolve) => { setTimeout(() => resolve(undefined), 2000).unref(); })]);
      const own = failed(exit) ?? (zstdFirst ? exit : undefined);
      zstd.kill();
      await piped;
      if (targetError) throw targetError.error;
      if (own && !ctx.signal.aborted) throw zstdError(source, own, zstd.stderr(), err);
      throw err;
    }
    const exit = await zstd.done;
    await piped;
    ctx.signal.throwIfAborted();
    if (targetError) throw targetError.error;
    if (exit.code !== 0) throw zstdError(source, exit, zstd.stderr());
    return outcome;
  } finally {
    ctx.signal.removeEventListener('abort', cancel);
    zstd.kill();
  }
}

function zstdError(source: Source, exit: Exit, stderr: string, cause?: unknown): BackupError {
  return new BackupError('DUMP_FAILED', `source "${source.name}": zstd ${describeExit(exit)}: ${lastLines(stderr)}`, cause === undefined ? {} : { cause });
}

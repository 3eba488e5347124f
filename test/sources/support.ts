import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { finished } from 'node:stream/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'vitest';
import { BackupError, type ErrorCode } from '../../src/errors.js';
import { dumpCompressed } from '../../src/sources/compress.js';
import type { DumpContext, DumpOutcome, Source } from '../../src/sources/types.js';
import { listDescendants, runCommand, sleep } from '../helpers/util.js';

export interface Sink {
  /** What the source writes goes here. */
  out: Writable;
  file: string;
  /** Bytes written so far. */
  bytes(): number;
  /** Zero-length writes seen (heartbeats of a source that spools). */
  emptyWrites(): number;
  /** Resolves when the source has ended `out` and the file is flushed (rejects if `out` was destroyed). */
  done(): Promise<void>;
}

export interface SinkOptions {
  /** After this many bytes, each write waits `delayMs` (a slow destination: the dump is throttled by backpressure). */
  throttleAfter?: number;
  delayMs?: number;
  /** Called after each write with the bytes so far. */
  onBytes?(bytes: number): void;
}

/** A Writable that collects into a file, like the dump activity's counter in front of the artifact. */
export function fileSink(file: string, opts: SinkOptions = {}): Sink {
  const ws = createWriteStream(file);
  // A write still in flight when a failed dump destroys `out` (and so `ws`) fails with ERR_STREAM_DESTROYED: it goes
  // to `out`, which is destroyed already, instead of being an uncaught error of the test run.
  ws.on('error', (err) => { if (!out.destroyed) out.destroy(err); });
  let bytes = 0;
  let empty = 0;
  const out = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _enc, cb) {
      if (chunk.length === 0) {
        empty++;
        cb();
        return;
      }
      bytes += chunk.length;
      const next = () => {
        opts.onBytes?.(bytes);
        if (opts.throttleAfter !== undefined && bytes > opts.throttleAfter) setTimeout(cb, opts.delayMs ?? 20);
        else cb();
      };
      if (ws.write(chunk)) next();
      else ws.once('drain', next);
    },
    final(cb) {
      ws.end(cb);
    },
    destroy(err, cb) {
      ws.destroy();
      cb(err);
    },
  });
  return { out, file, bytes: () => bytes, emptyWrites: () => empty, done: () => finished(out) };
}

/** What the dump activity passes to a source's stages: the source's context and the compress stage's zstd level. */
export type StageContext = DumpContext & { compressionLevel: number };

export function dumpContext(stagingDir: string, extra: Partial<StageContext> = {}): StageContext {
  return { signal: new AbortController().signal, stagingDir, compressionLevel: 3, ...extra };
}

/**
 * Dumps a source into `out` through the same stages as the dump activity (src/sources/compress.ts: the source, then
 * zstd unless the source is not compressed), so that what lands in `out` is the component.
 */
export function dumpInto(source: Source, out: Writable, ctx: StageContext): Promise<DumpOutcome> {
  return dumpCompressed(source, { out }, ctx);
}

/** Runs a dump (through the compress stage) into a file and waits until the file is complete. */
export async function dumpToFile(source: Source, file: string, ctx: StageContext, opts: SinkOptions = {}): Promise<{ outcome: DumpOutcome; size: number }> {
  const sink = fileSink(file, opts);
  const outcome = await dumpInto(source, sink.out, ctx);
  await sink.done();
  return { outcome, size: sink.bytes() };
}

/** Runs a dump that must fail; returns the error after checking that it is a BackupError with this code. */
export async function expectDumpError(promise: Promise<unknown>, code: ErrorCode): Promise<BackupError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err, 'the dump should have failed').toBeInstanceOf(BackupError);
  const be = err as BackupError;
  expect(be.code, be.detail).toBe(code);
  return be;
}

export async function zstdDecompress(file: string, to: string): Promise<void> {
  const r = await runCommand('zstd', ['-q', '-d', '-f', '-o', to, file]);
  if (r.code !== 0) throw new Error(`zstd -d ${file}: ${r.stderr}`);
}

/** The command lines and environments of this process's live descendants (from /proc). */
export function descendants(): { pid: number; argv: string[]; environ: string[] }[] {
  const out = [];
  for (const pid of listDescendants(process.pid)) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
      out.push({ pid, argv, environ });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/**
 * Watches this process's children while `during` runs: every command line seen, and the environment of each
 * process whose command line (base names of its words) matches `envOf`.
 */
export async function watchChildren<T>(during: Promise<T>, envOf: RegExp): Promise<{ result: PromiseSettledResult<T>; argvs: string[][]; envs: string[][] }> {
  const argvs: string[][] = [];
  const envs: string[][] = [];
  let running = true;
  const settled = Promise.allSettled([during]).then(([r]) => { running = false; return r; });
  while (running) {
    for (const p of descendants()) {
      argvs.push(p.argv);
      if (envOf.test(p.argv.map((a) => path.basename(a)).join(' '))) envs.push(p.environ);
    }
    await sleep(5);
  }
  return { result: await settled, argvs, envs };
}

/** Names of the entries of a directory. */
export function ls(dir: string): string[] {
  return readdirSync(dir).sort();
}

/** A destination that fails like a full disk once `after` bytes were written. */
export function fullDisk(after: number): Writable {
  let bytes = 0;
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (bytes > after) {
        const err: NodeJS.ErrnoException = new Error('ENOSPC: no space left on device, write');
        err.code = 'ENOSPC';
        cb(err);
      } else {
        cb();
      }
    },
  });
}

import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TailBuffer } from './tail-buffer.js';

/** What every child process inherits from the worker: where programs are, the home directory, the locale, the time zone. */
const INHERITED = /^(PATH|HOME|LANG|LC_[A-Z_]+|TZ)$/;

/**
 * The environment of a child process: only PATH, HOME, LANG, LC_* and TZ of the worker's, plus `extra` (exactly what
 * the tool needs: PGPASSWORD for the PostgreSQL tools, a command source's configured `env`). Nothing else the worker
 * holds (other jobs' secrets, TEMPORAL_API_KEY) reaches tar, zstd, the dump tools or third-party commands.
 * An `extra` value of undefined removes the name.
 */
export function childEnv(extra: Readonly<Record<string, string | undefined>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && INHERITED.test(k)) env[k] = v;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** How a child process ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Proc {
  child: ChildProcess;
  /** Settles when the process has exited and its output is closed; rejects when it cannot be started (ENOENT, EACCES). */
  done: Promise<Exit>;
  /** The last bytes of its stderr (16 KiB). */
  stderr(): string;
  /** SIGKILL, if still running. */
  kill(): void;
}

export interface SpawnOptions {
  /** The child's whole environment, built with `childEnv(extra)`. Default: `childEnv()`. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** stdin, stdout (stderr is always a pipe, kept as a tail). Default: stdin ignored, stdout piped. */
  stdin?: 'ignore' | 'pipe';
  stdout?: 'ignore' | 'pipe' | number;
  /** Kills the process (SIGKILL) when aborted. */
  signal?: AbortSignal;
}

/** Starts a program without a shell. Its stderr is kept as a bounded tail; the process is killed when `signal` aborts. */
export function spawnProc(cmd: string, args: readonly string[], opts: SpawnOptions = {}): Proc {
  const stdio: StdioOptions = [opts.stdin ?? 'ignore', opts.stdout ?? 'pipe', 'pipe'];
  const child = spawn(cmd, args, { stdio, env: opts.env ?? childEnv(), cwd: opts.cwd });
  const err = new TailBuffer(16 * 1024);
  child.stderr!.on('data', (d: Buffer) => err.push(d));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  opts.signal?.addEventListener('abort', kill, { once: true });
  if (opts.signal?.aborted) kill();
  const done = new Promise<Exit>((resolve, reject) => {
    child.once('error', (e) => {
      opts.signal?.removeEventListener('abort', kill);
      reject(e);
    });
    child.once('close', (code, signal) => {
      opts.signal?.removeEventListener('abort', kill);
      resolve({ code, signal });
    });
  });
  done.catch(() => undefined); // awaited by the caller; avoid an unhandled rejection if it gives up earlier
  if (child.stdin) child.stdin.on('error', () => undefined); // EPIPE when the program exits first: reported by its exit
  return { child, done, stderr: () => err.toString(), kill };
}

/** Runs a program to completion; stdout is collected up to `maxStdout` bytes (the rest is counted, not kept). */
export async function runCapture(cmd: string, args: readonly string[], opts: SpawnOptions & { maxStdout?: number } = {}): Promise<Exit & { stdout: string; stderr: string }> {
  const p = spawnProc(cmd, args, { ...opts, stdout: 'pipe' });
  const max = opts.maxStdout ?? 1 << 20;
  const chunks: Buffer[] = [];
  let kept = 0;
  p.child.stdout!.on('data', (d: Buffer) => {
    if (kept >= max) return;
    chunks.push(d.subarray(0, max - kept));
    kept += Math.min(d.length, max - kept);
  });
  const exit = await p.done;
  return { ...exit, stdout: Buffer.concat(chunks).toString('utf8'), stderr: p.stderr() };
}

/** "exited 2", "was killed by SIGKILL". */
export function describeExit(e: Exit): string {
  if (e.code !== null) return `exited ${e.code}`;
  return `was killed by ${e.signal ?? 'a signal'}`;
}

/** The last `n` non-empty lines of a tool's output, for error messages. */
export function lastLines(text: string, n = 10): string {
  return text.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '').slice(-n).join('\n');
}

/** Replaces every occurrence of each secret (of 4 characters or more) with `***`. */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) {
    if (s && s.length >= 4) out = out.split(s).join('***');
  }
  return out;
}

/** The full path of `cmd` on PATH (or `cmd` itself when it contains a slash and is executable), or undefined. */
export async function which(cmd: string, envPath = process.env.PATH ?? ''): Promise<string | undefined> {
  const isExe = (p: string) => access(p, constants.X_OK).then(() => true, () => false);
  if (cmd.includes('/')) return (await isExe(cmd)) ? cmd : undefined;
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, cmd);
    if (await isExe(candidate)) return candidate;
  }
  return undefined;
}

/** Starts `zstd -T0 -<level>` reading stdin and writing stdout (a pipe, or the file descriptor `outFd`). */
export function spawnZstd(level: number, signal: AbortSignal, outFd?: number): Proc {
  return spawnProc('zstd', ['-q', '-c', '-T0', `-${level}`], { stdin: 'pipe', stdout: outFd ?? 'pipe', signal });
}

/**
 * Ends a stream whose bytes another process wrote by its descriptor (`pipeFd`), or that is done, and waits until it
 * has finished or closed: an error is a rejection. Its close counts as its end: a child's stdin is destroyed when the
 * child exits, and an `end()` racing that exit (zstd or age dying on a full disk) was seen to call back never, which
 * hung the dump for good; the child's exit status says what went wrong.
 */
export function endWritable(stream: Writable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (stream.writableFinished || stream.destroyed) {
      resolve();
      return;
    }
    stream.once('error', reject);
    stream.once('close', () => resolve());
    stream.end((err?: Error | null) => {
      // Destroyed without an error of its own (the child exited): ended. Its own error: the rejection.
      const code = (err as NodeJS.ErrnoException | null | undefined)?.code;
      if (err && code !== 'ERR_STREAM_DESTROYED' && code !== 'ERR_STREAM_ALREADY_FINISHED') reject(err);
      else resolve();
    });
  });
}

/**
 * The file descriptor of a child process's stdin pipe, so that another child can write to it directly. Undefined
 * where Node does not expose it: the writer then goes through the stream.
 */
export function pipeFd(stream: Writable): number | undefined {
  const fd = (stream as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

export interface PipeOptions {
  cmd: string;
  args: readonly string[];
  /** The program's whole environment, built with `childEnv(extra)`. Default: `childEnv()`. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Keep this many bytes of the end of the output. */
  tailBytes?: number;
  signal: AbortSignal;
}

export interface PipeResult {
  /** How the dump program ended. */
  exit: Exit;
  stderr: string;
  /** Bytes the program wrote. */
  bytes: number;
  /** The last `tailBytes` of the program's output. */
  tail: Buffer;
}

/**
 * Runs a dump program and streams its stdout into `out` (the compress stage's input, or the staged file), which it
 * ends. The output is counted and its tail kept as it passes, so that it can be checked without reading it again.
 * The program is killed when `signal` aborts or when writing to `out` fails. Never judges the exit code: the caller
 * does. Rejects when the program cannot be started or `out` fails.
 */
export async function pipeCommand(o: PipeOptions, out: Writable): Promise<PipeResult> {
  const local = new AbortController();
  const abort = () => local.abort();
  o.signal.addEventListener('abort', abort, { once: true });
  if (o.signal.aborted) abort();
  const producer = spawnProc(o.cmd, o.args, { env: o.env, cwd: o.cwd, signal: local.signal });
  const tail = new TailBuffer(Math.max(1, o.tailBytes ?? 1));
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      tail.push(chunk);
      cb(null, chunk);
    },
  });
  const fail = <T>(p: Promise<T>) => p.catch((e: unknown) => { abort(); throw e; });
  try {
    await Promise.all([fail(producer.done), fail(pipeline(producer.child.stdout as Readable, tap, out, { signal: local.signal }))]);
    const exit = await producer.done;
    return { exit, stderr: producer.stderr(), bytes, tail: tail.contents() };
  } finally {
    o.signal.removeEventListener('abort', abort);
    producer.kill();
  }
}

/**
 * Running pgbackrest for a `kind: pgbackrest` job: the job's config file, stanza and repository on the command line
 * (never a secret: pgBackRest reads its credentials from its own config file), the minimal child environment, as the
 * job's `user` when the worker runs as root. Cancellation sends SIGTERM (pgBackRest stops and releases its lock), then
 * SIGKILL after 15 s.
 */
import { readFile } from 'node:fs/promises';
import type { PgbackrestJob } from '../config/schema.js';
import { BackupError, type ErrorCode } from '../errors.js';
import { childEnv, describeExit, lastLines, spawnProc } from '../lib/process.js';

export interface PgbackrestRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Commands that take `--repo` (check looks at every repository). */
const REPO_COMMANDS = new Set(['backup', 'info', 'verify', 'repo-ls', 'repo-get', 'restore', 'expire']);

/** The argument list: options, the command, then its parameters (repo-ls's path). */
export function pgbackrestArgs(job: Pick<PgbackrestJob, 'configFile' | 'stanza' | 'repo'>, command: string, options: readonly string[] = [], parameters: readonly string[] = []): string[] {
  return [
    `--config=${job.configFile}`, `--stanza=${job.stanza}`, ...(job.repo !== undefined && REPO_COMMANDS.has(command) ? [`--repo=${job.repo}`] : []),
    '--log-level-console=warn', '--log-level-stderr=warn', ...options, command, ...parameters,
  ];
}

/** The program and arguments to run, through runuser when the worker is root and the job names an account. */
export function asJobUser(job: Pick<PgbackrestJob, 'user'>, cmd: string, args: readonly string[]): [string, string[]] {
  const root = process.getuid?.() === 0;
  return root && job.user ? ['runuser', ['-u', job.user, '--', cmd, ...args]] : [cmd, [...args]];
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Called every second while it runs (heartbeats). */
  onTick?: () => void;
  maxStdout?: number;
  /** The command's parameters (after the command). */
  parameters?: readonly string[];
}

/** Runs pgbackrest to completion (never throws for its exit code; see `ensureOk`). */
export async function runPgbackrest(job: PgbackrestJob, command: string, options: readonly string[] = [], o: RunOptions = {}): Promise<PgbackrestRun> {
  const [cmd, args] = asJobUser(job, job.pgbackrest, pgbackrestArgs(job, command, options, o.parameters));
  const p = spawnProc(cmd, args, { env: childEnv() });
  const chunks: Buffer[] = [];
  let kept = 0;
  const max = o.maxStdout ?? 64 << 20;
  p.child.stdout!.on('data', (d: Buffer) => {
    if (kept < max) { chunks.push(d.subarray(0, max - kept)); kept += Math.min(d.length, max - kept); }
  });
  let killTimer: NodeJS.Timeout | undefined;
  const stop = () => {
    p.child.kill('SIGTERM');
    killTimer = setTimeout(() => p.kill(), 15_000);
  };
  o.signal?.addEventListener('abort', stop, { once: true });
  if (o.signal?.aborted) stop();
  const tick = o.onTick ? setInterval(o.onTick, 1000) : undefined;
  try {
    const exit = await p.done.catch((err: unknown) => {
      throw new BackupError('SOURCE_UNREADABLE', `cannot run ${job.pgbackrest}: ${(err as Error).message}`, { hint: 'install pgbackrest on the worker or set the job\'s pgbackrest path' });
    });
    return { ...exit, stdout: Buffer.concat(chunks).toString('utf8'), stderr: p.stderr() };
  } finally {
    clearInterval(tick);
    clearTimeout(killTimer);
    o.signal?.removeEventListener('abort', stop);
  }
}

/** pgBackRest's own error lines (`ERROR: [082]: …`), else the last lines of its output. */
export function pgbackrestMessage(r: Pick<PgbackrestRun, 'stdout' | 'stderr'>): string {
  const text = `${r.stderr}\n${r.stdout}`;
  const errors = text.split('\n').map((l) => l.trim()).filter((l) => /\bERROR: \[\d+\]/.test(l)).map((l) => l.replace(/^.*?\bERROR: /, 'ERROR: '));
  return errors.length > 0 ? [...new Set(errors)].join('\n') : lastLines(text, 8);
}

/** Throws a BackupError with pgBackRest's own message when the command failed. */
export function ensureOk(r: PgbackrestRun, what: string, code: ErrorCode, hint?: string): PgbackrestRun {
  if (r.code === 0) return r;
  throw new BackupError(code, `${what} ${describeExit(r)}: ${pgbackrestMessage(r)}`, hint ? { hint } : {});
}

/**
 * The primary's connection for the drill check, from pgBackRest's config file: `pg1-socket-path`, `pg1-port` and
 * `pg1-user` of the stanza's section (else [global], else PostgreSQL's defaults).
 */
export async function primaryConnection(job: Pick<PgbackrestJob, 'configFile' | 'stanza'>): Promise<{ host: string; port: number; user: string }> {
  const text = await readFile(job.configFile, 'utf8');
  const sections = new Map<string, Map<string, string>>();
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) { current = sec[1]!; continue; }
    const kv = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
    if (kv) {
      if (!sections.has(current)) sections.set(current, new Map());
      sections.get(current)!.set(kv[1]!, kv[2]!);
    }
  }
  const get = (k: string) => sections.get(job.stanza)?.get(k) ?? sections.get('global')?.get(k);
  if (get('pg1-host')) {
    throw new BackupError('CONFIG_INVALID', `the drill check runs on the primary over its Unix socket, but stanza "${job.stanza}" names a remote pg1-host`, { hint: 'run the worker on the database host' });
  }
  return { host: get('pg1-socket-path') ?? '/var/run/postgresql', port: Number(get('pg1-port') ?? 5432), user: get('pg1-user') ?? 'postgres' };
}

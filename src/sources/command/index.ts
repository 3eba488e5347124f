import type { Writable } from 'node:stream';
import type { CommandSourceConfig as Config } from './schema.js';
import { readSecret } from '../../config/secrets.js';
import { BackupError } from '../../errors.js';
import { childEnv, describeExit, lastLines, pipeCommand, redact, runCapture, which } from '../../lib/process.js';
import type { DumpContext, DumpOutcome, Source } from '../types.js';

/**
 * The environment of the command: the minimal child environment (PATH, HOME, LANG, LC_*, TZ of the worker) plus
 * exactly the configured variables, with their secrets read. Nothing else of the worker's reaches the command.
 */
export async function commandEnv(cfg: Pick<Config, 'name' | 'env'>): Promise<{ env: NodeJS.ProcessEnv; secrets: string[] }> {
  const extra: Record<string, string> = {};
  const secrets: string[] = [];
  for (const [k, v] of Object.entries(cfg.env)) {
    if (typeof v === 'string') {
      extra[k] = v;
    } else {
      const secret = await readSecret(v, `source "${cfg.name}" environment variable ${k}`);
      secrets.push(secret);
      extra[k] = secret;
    }
  }
  return { env: childEnv(extra), secrets };
}

/**
 * Any program whose stdout is the dump (mongodump --archive, redis-cli --rdb -, pg_basebackup -Ft -D -, …), run without
 * a shell; the dump's compress stage compresses it with zstd -T0 unless `compress: false`. A non-zero exit is a failure even when output was
 * produced; so is output below `minSize` (default 1 byte).
 */
export class CommandSource implements Source {
  readonly type = 'command';
  constructor(private readonly cfg: Config) {}
  get name(): string { return this.cfg.name; }
  get compress(): boolean { return this.cfg.compress; }
  get extension(): string { return this.cfg.compress ? `${this.cfg.extension}.zst` : this.cfg.extension; }

  private get program(): string { return this.cfg.command[0]!; }

  private notFound(err: unknown): BackupError | undefined {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EACCES') return undefined;
    return new BackupError('SOURCE_UNREADABLE', `source "${this.name}": cannot run ${this.program}: ${code === 'ENOENT' ? 'not found' : 'permission denied'}${this.cfg.cwd ? ` (cwd ${this.cfg.cwd})` : ''}`, {
      hint: 'install the program on the worker or give its full path as the first element of command',
    });
  }

  async dump(out: Writable, ctx: DumpContext): Promise<DumpOutcome> {
    const { env, secrets } = await commandEnv(this.cfg);
    let r;
    try {
      r = await pipeCommand({
        cmd: this.program, args: this.cfg.command.slice(1), env, cwd: this.cfg.cwd, signal: ctx.signal,
      }, out);
    } catch (err) {
      ctx.signal.throwIfAborted();
      throw this.notFound(err) ?? err;
    }
    ctx.signal.throwIfAborted();
    const stderr = () => redact(lastLines(r.stderr), secrets) || 'no error output';
    if (r.exit.code !== 0) {
      throw new BackupError('DUMP_FAILED', `source "${this.name}": ${this.program} ${describeExit(r.exit)} after writing ${r.bytes} bytes; the output is not used: ${stderr()}`);
    }
    if (r.bytes === 0) {
      throw new BackupError('SOURCE_EMPTY', `source "${this.name}": ${this.program} exited 0 but wrote nothing to stdout: ${stderr()}`, {
        hint: 'the command must write the dump to its standard output (e.g. mongodump --archive, redis-cli --rdb -)',
      });
    }
    if (r.bytes < this.cfg.minSize) {
      throw new BackupError('DUMP_INCOMPLETE', `source "${this.name}": ${this.program} wrote ${r.bytes} bytes, below the minimum of ${this.cfg.minSize} bytes: ${stderr()}`, {
        hint: 'lower minSize if a dump this small is expected',
      });
    }
    return {
      warnings: [],
      stats: { bytes: r.bytes, command: this.program, check: `exit 0 and at least ${this.cfg.minSize} bytes` },
    };
  }

  async estimate(): Promise<number> {
    return this.cfg.estimatedSize ?? 0;
  }

  async check(): Promise<string> {
    const found = await which(this.program, process.env.PATH);
    if (!found) {
      throw new BackupError('SOURCE_UNREADABLE', `source "${this.name}": ${this.program} is not installed or not executable on the worker`, {
        hint: 'install the program on the worker or give its full path as the first element of command',
      });
    }
    const { env, secrets } = await commandEnv(this.cfg);
    if (!this.cfg.checkCommand) return `command ${found} (not run: set checkCommand to run a probe)`;
    const [cmd, ...args] = this.cfg.checkCommand as [string, ...string[]];
    let r;
    try {
      r = await runCapture(cmd, args, { env, cwd: this.cfg.cwd });
    } catch (err) {
      throw this.notFound(err) ?? err;
    }
    const output = redact((r.stdout.trim() || r.stderr.trim()).split('\n')[0] ?? '', secrets);
    if (r.code !== 0) {
      throw new BackupError('SOURCE_UNREADABLE', `source "${this.name}": checkCommand ${cmd} ${describeExit(r)}: ${redact(lastLines(r.stderr), secrets) || output}`);
    }
    return `command ${found}: ${output}`;
  }
}

import { spawn } from 'node:child_process';
import { access, rm } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackupError } from '../../errors.js';
import { run } from '../../lib/exec.js';
import { childEnv } from '../../lib/process.js';
import type { DumpContext, DumpOutcome, Source } from '../types.js';
import { listingStats } from './listing.js';
import type { FilesSourceConfig as Config } from './schema.js';

const tail = (s: string, n = 10) => s.trim().split('\n').slice(-n).join('\n');

/**
 * Files and directories, archived with GNU tar (compressed by the dump's compress stage, zstd -T0: all cores; tar
 * writes its pipe).
 * tar exit 1 ("file changed as we read it") is a warning; exit 2 is a failure; an archive without a single
 * file is a failure.
 */
export class FilesSource implements Source {
  readonly type = 'files';
  readonly extension = 'tar.zst';
  readonly compress = true;
  constructor(private readonly cfg: Config) {}
  get name(): string { return this.cfg.name; }

  private tarArgs(listFile: string, snapshotFile?: string): string[] {
    const args = ['--create', '--file=-', '-vv', `--index-file=${listFile}`, '--directory=/', '--sparse', '--one-file-system'];
    // Device numbers change across reboots and remounts (NFS): they must not turn a diff into a full copy.
    // "Directory is new" (every directory of a full) is no warning: it would bury real ones in the stderr tail.
    if (snapshotFile) args.push(`--listed-incremental=${snapshotFile}`, '--no-check-device', '--warning=no-new-dir', '--warning=no-rename-directory');
    for (const ex of this.cfg.exclude) {
      // Members are stored relative to / (--directory=/), so an absolute pattern would never match: it means "from the
      // root", which is tar's --anchored match of the same pattern without its leading slashes.
      if (ex.startsWith('/')) args.push('--anchored', `--exclude=${ex.replace(/^\/+/, '')}`, '--no-anchored');
      else args.push(`--exclude=${ex}`);
    }
    args.push('--');
    // Paths relative to / so that tar does not warn about removing the leading slash; restore with -C /.
    for (const p of this.cfg.paths) args.push(path.relative('/', p) || '.');
    return args;
  }

  async dump(out: Writable, ctx: DumpContext): Promise<DumpOutcome> {
    const listFile = path.join(ctx.stagingDir, `${this.name}.list`);
    // tar writes the compress stage's input pipe itself when it may: the bytes never pass through the event loop.
    const tar = spawn('tar', this.tarArgs(listFile, ctx.snapshot?.file), { stdio: ['ignore', ctx.outputFd ?? 'pipe', 'pipe'], env: childEnv() });
    let tarErr = '';
    tar.stderr!.on('data', (d: Buffer) => { if (tarErr.length < 1 << 16) tarErr += d.toString(); });
    const tarExit = new Promise<number | null>((resolve, reject) => {
      tar.on('error', reject);
      tar.on('close', (code, signal) => resolve(code ?? (signal ? 128 : null)));
    });
    const kill = () => { tar.kill('SIGKILL'); };
    ctx.signal.addEventListener('abort', kill, { once: true });
    try {
      const piped = tar.stdout ? pipeline(tar.stdout, out, { signal: ctx.signal }) : Promise.resolve();
      const [tarCode] = await Promise.all([tarExit, piped]);
      ctx.signal.throwIfAborted();
      const warnings: string[] = [];
      if (tarCode === 1) {
        const lines = tail(tarErr, 20) || 'some files differ';
        if (this.cfg.failOnChangedFiles) throw new BackupError('DUMP_FAILED', `source "${this.name}": files changed while being archived:\n${lines}`, { hint: 'failOnChangedFiles is set for this source' });
        warnings.push(`source "${this.name}": files changed while being archived (tar exit 1): ${lines}`);
      } else if (tarCode !== 0) {
        const unreadable = /Cannot (stat|open|read|savedir)|Permission denied|No such file/.test(tarErr);
        throw new BackupError(unreadable ? 'SOURCE_UNREADABLE' : 'DUMP_FAILED', `source "${this.name}": tar exited ${tarCode}: ${tail(tarErr)}`, {
          hint: unreadable ? `check that the paths exist and that the worker user may read them: ${this.cfg.paths.join(', ')}` : undefined,
        });
      }
      const stats = await listingStats(listFile, this.name);
      // A diff of unchanged data holds no file, only the directories' listings (which record deletions).
      if (ctx.snapshot?.differential ? stats.entries === 0 : stats.files === 0) {
        throw new BackupError('SOURCE_EMPTY', `source "${this.name}": no files to back up under ${this.cfg.paths.join(', ')}`, {
          hint: 'an empty component is treated as a failure: check the paths and excludes',
        });
      }
      return { warnings, stats };
    } catch (err) {
      kill();
      throw err;
    } finally {
      ctx.signal.removeEventListener('abort', kill);
      await rm(listFile, { force: true });
    }
  }

  async estimate(): Promise<number> {
    const r = await run('du', ['-sb', '--', ...this.cfg.paths]);
    return r.stdout.split('\n').reduce((sum, l) => sum + (Number(l.split('\t')[0]) || 0), 0);
  }

  async check(): Promise<string> {
    for (const p of this.cfg.paths) {
      try {
        await access(p, constants.R_OK);
      } catch (err) {
        throw new BackupError('SOURCE_UNREADABLE', `source "${this.name}": cannot read ${p}: ${(err as Error).message}`);
      }
    }
    return `files: ${this.cfg.paths.join(', ')}`;
  }
}

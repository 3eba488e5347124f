/**
 * The reference tools the backup, diff and restore comparisons run beside backupctl (issue 19's anchors), on the same
 * loopback sshd: restic (sftp: repository), borg (`borg serve` on the remote side over ssh), and the run record every
 * row of those comparisons shares (wall time, CPU, peak RSS, steal).
 *
 * restic and borg are not installed in CI (the bench does not run there): when one is missing, its rows are left out
 * with a log line.
 */
import { rm } from 'node:fs/promises';
import type { SshdHandle } from '../test/helpers/sshd.js';
import { runCommand, type RunResult } from '../test/helpers/util.js';
import { median } from './stats.js';
import { shellQuote, type Measured } from './sys.js';
import type { RunRecord } from './transport.js';

/** The same password for every bench repository (throwaway data on a loopback server). */
const PASSWORD = 'bench-only-password';
/** The remote side's borg (the remote is this machine). */
const REMOTE_BORG = '/usr/bin/borg';

/**
 * A run's record from its measurement. `own` names whose memory the row's peak RSS is: 'self' for backupctl running
 * in the bench process (the bench process, its worker, and the tar/zstd/… it starts), 'children' for a command the
 * bench starts (restic, borg, a script, a `backupctl` CLI process: that process tree alone).
 */
export function runRecord(rep: number, m: Measured<unknown>, bytes: number, own: 'self' | 'children'): RunRecord {
  return {
    rep, seconds: m.seconds, mbps: bytes / 1e6 / m.seconds, busyCores: m.busyCores, nodeCpuS: m.nodeCpuS, childCpuS: m.childCpuS,
    // The bench process's own high-water marks describe backupctl only when backupctl runs in it.
    ...(own === 'self' ? { nodePeakRssMiB: m.nodePeakRssMiB, maxRssBeforeMiB: m.maxRssBeforeMiB, maxRssAfterMiB: m.maxRssAfterMiB, nodeRssBeforeMiB: m.nodeRssBeforeMiB } : {}),
    serverCpuS: m.serverCpuS, foreignCores: m.foreignCores, stealS: m.stealS,
    ...(m.rss ? { clientPeakRssMiB: own === 'self' ? m.rss.selfAndChildrenMiB : m.rss.childrenMiB, sessionsPeakRssMiB: m.rss.sessionsMiB, rssSamples: m.rss.samples, cpuByCommand: m.rss.cpuByCommand } : {}),
  };
}

/** Median of a field over runs, ignoring runs without it. */
export function medianOf<R>(runs: readonly R[], f: (r: R) => number | undefined): number | undefined {
  const v = runs.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
  return v.length ? median(v) : undefined;
}

/** `<tool> --version`-like first line, or undefined when the tool is not installed or fails. */
async function versionOf(cmd: string, args: string[]): Promise<string | undefined> {
  const r = await runCommand(cmd, args).catch(() => undefined);
  return r?.code === 0 ? (r.stdout || r.stderr).trim().split('\n')[0] : undefined;
}

async function mustSucceed(what: string, p: Promise<RunResult>): Promise<RunResult> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code ?? r.signal}):\n${r.stderr.slice(-2000)}${r.stdout.slice(-500)}`);
  return r;
}

export interface Tool {
  version: string;
  /** The command line, for the report (secrets are in the environment, never here). */
  describe(args: readonly string[]): string;
  /** Runs the tool with these arguments (after its repository options); throws on a non-zero exit. */
  run(args: readonly string[], opts?: { cwd?: string; timeoutMs?: number }): Promise<RunResult>;
  /** Creates the repository (untimed). */
  init(): Promise<void>;
  /** Removes the repository and the tool's local cache. */
  remove(): Promise<void>;
}

/**
 * restic with an sftp: repository at `repoDir` on the sshd (ssh with the helper's options as `sftp.command`) and its
 * local cache in `cacheDir`, as in normal use. Undefined when restic is not installed.
 */
export async function restic(sshd: SshdHandle, repoDir: string, cacheDir: string): Promise<Tool | undefined> {
  const version = await versionOf('restic', ['version']);
  if (!version) return undefined;
  const sftpCommand = ['ssh', ...sshd.sshArgs, `${sshd.user}@${sshd.host}`, '-s', 'sftp'].join(' ');
  const base = ['-r', `sftp:${sshd.user}@${sshd.host}:${repoDir}`, '-o', `sftp.command=${sftpCommand}`, '--cache-dir', cacheDir];
  const env = { ...process.env, RESTIC_PASSWORD: PASSWORD };
  const run = (args: readonly string[], opts: { cwd?: string; timeoutMs?: number } = {}) =>
    mustSucceed(`restic ${args.join(' ')}`, runCommand('restic', [...base, ...args], { env, cwd: opts.cwd, timeoutMs: opts.timeoutMs ?? 15 * 60_000 }));
  return {
    version,
    describe: (args) => `RESTIC_PASSWORD=… restic -r sftp:${sshd.user}@${sshd.host}:<repo> -o sftp.command='ssh <sshd options> -s sftp' --cache-dir <cache> ${args.join(' ')}`,
    run,
    init: async () => { await run(['init'], { timeoutMs: 5 * 60_000 }); },
    remove: async () => {
      await rm(repoDir, { recursive: true, force: true });
      await rm(cacheDir, { recursive: true, force: true });
    },
  };
}

/**
 * borg with a repository at `repoDir` on the sshd, reached as ssh://user@127.0.0.1:port/… with BORG_RSH set to ssh
 * with the helper's options (the port comes from the URL), `borg serve` (/usr/bin/borg) on the remote side, repokey
 * encryption (BORG_PASSPHRASE), and BORG_BASE_DIR (its cache, keys and security records) in `baseDir`.
 * Undefined when borg is not installed.
 */
export async function borg(sshd: SshdHandle, repoDir: string, baseDir: string): Promise<Tool | undefined> {
  const version = await versionOf('borg', ['--version']);
  if (!version) return undefined;
  const sshArgs = [...sshd.sshArgs];
  const p = sshArgs.indexOf('-p');
  if (p >= 0) sshArgs.splice(p, 2);
  const repo = `ssh://${sshd.user}@${sshd.host}:${sshd.port}${repoDir}`;
  const env = { ...process.env, BORG_PASSPHRASE: PASSWORD, BORG_RSH: ['ssh', ...sshArgs].map(shellQuote).join(' '), BORG_BASE_DIR: baseDir };
  // An archive name goes after the repository as `::name`; everything else after the subcommand.
  const withRepo = (args: readonly string[]) => {
    const [cmd, ...rest] = args;
    return [cmd!, '--remote-path', REMOTE_BORG, ...rest.map((a) => (a.startsWith('::') ? `${repo}${a}` : a))];
  };
  const run = (args: readonly string[], opts: { cwd?: string; timeoutMs?: number } = {}) =>
    mustSucceed(`borg ${args.join(' ')}`, runCommand('borg', withRepo(args), { env, cwd: opts.cwd, timeoutMs: opts.timeoutMs ?? 15 * 60_000 }));
  return {
    version,
    describe: (args) => `BORG_PASSPHRASE=… BORG_RSH='ssh <sshd options>' borg ${withRepo(args).join(' ').replace(repo, 'ssh://<user>@127.0.0.1:<port>/<repo>')}`,
    run,
    init: async () => { await run(['init', '--encryption', 'repokey', repo], { timeoutMs: 5 * 60_000 }); },
    remove: async () => {
      await rm(repoDir, { recursive: true, force: true });
      await rm(baseDir, { recursive: true, force: true });
    },
  };
}

import { spawn } from 'node:child_process';
import { childEnv } from './process.js';

/** Runs a command to completion and returns its exit code and (bounded) output. Environment: `childEnv()` unless given. */
export function run(cmd: string, args: string[], opts: { signal?: AbortSignal; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], signal: opts.signal, env: opts.env ?? childEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => { if (stdout.length < 1 << 20) stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { if (stderr.length < 1 << 16) stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (child.stdin) {
      child.stdin.on('error', () => undefined); // the command may exit without reading its input
      child.stdin.end(opts.input);
    }
  });
}

let versions: Promise<Record<string, string>> | undefined;

/** Versions of the tools that wrote a backup, for the manifest. */
export function toolVersions(): Promise<Record<string, string>> {
  versions ??= (async () => {
    const first = async (cmd: string, args: string[]) => {
      const r = await run(cmd, args).catch(() => undefined);
      return (r?.stdout || r?.stderr || 'unknown').split('\n')[0]!.trim();
    };
    return {
      tar: await first('tar', ['--version']),
      zstd: await first('zstd', ['--version']),
      node: process.version,
      backupctl: process.env.npm_package_version ?? BACKUPCTL_VERSION,
    };
  })();
  return versions;
}

export const BACKUPCTL_VERSION = '0.1.0';

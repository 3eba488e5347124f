import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { BackupError } from '../errors.js';
import { run } from '../lib/exec.js';
import { childEnv } from '../lib/process.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The Temporal CLI: TEMPORAL_CLI_PATH, else `temporal` on PATH, else the project's tools folder, else built by scripts/install-temporal.sh. */
export async function temporalBinary(): Promise<string> {
  if (process.env.TEMPORAL_CLI_PATH && existsSync(process.env.TEMPORAL_CLI_PATH)) return process.env.TEMPORAL_CLI_PATH;
  const onPath = await run('sh', ['-c', 'command -v temporal']).catch(() => undefined);
  if (onPath?.code === 0 && onPath.stdout.trim()) return onPath.stdout.trim();
  const local = path.join(root, '.tools', 'bin', 'temporal');
  if (existsSync(local)) return local;
  process.stderr.write('Building the Temporal CLI v1.5.1 with go install (once; takes a few minutes)...\n');
  // Building needs the developer's Go and proxy settings, and nothing else of the worker's environment.
  const goEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(GO[A-Z0-9_]*|TEMPORAL_CLI_[A-Z_]+|(HTTPS?|NO|ALL)_PROXY|(https?|no|all)_proxy)$/.test(k)));
  const r = await run('bash', [path.join(root, 'scripts', 'install-temporal.sh')], { env: childEnv(goEnv) });
  const bin = r.stdout.trim().split('\n').at(-1);
  if (r.code !== 0 || !bin || !existsSync(bin)) {
    throw new BackupError('TEMPORAL_UNAVAILABLE', `could not get the Temporal CLI: ${r.stderr.trim().split('\n').slice(-5).join('\n')}`, {
      hint: 'install Go and run scripts/install-temporal.sh, or put `temporal` on PATH',
    });
  }
  return bin;
}

export const SEARCH_ATTRIBUTES = ['BackupJob=Keyword', 'BackupType=Keyword', 'BackupOutcome=Keyword'];

export interface DevServer {
  address: string;
  uiUrl: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    const done = (open: boolean) => { socket.destroy(); resolve(open); };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/** Starts `temporal server start-dev` with its state in SQLite under `stateDir`, and waits until it answers. */
export async function startDevServer(opts: { stateDir: string; port?: number; uiPort?: number }): Promise<DevServer> {
  const port = opts.port ?? 7233;
  const uiPort = opts.uiPort ?? 8233;
  for (const [p, what] of [[port, 'gRPC'], [uiPort, 'Web UI']] as const) {
    // Something already answering there would pass the health check below in place of the server started here.
    if (await portAnswers(p)) {
      throw new BackupError('TEMPORAL_UNAVAILABLE', `cannot start the Temporal dev server: its ${what} port 127.0.0.1:${p} is already in use`, {
        hint: `is another \`backupctl up\` or \`temporal server start-dev\` running? Stop it, use it (TEMPORAL_ADDRESS=127.0.0.1:${port} backupctl worker), or pick other ports with --port and --ui-port`,
      });
    }
  }
  const bin = await temporalBinary();
  mkdirSync(opts.stateDir, { recursive: true });
  const logFile = path.join(opts.stateDir, 'temporal.log');
  const out = openSync(logFile, 'a');
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--ui-port', String(uiPort),
    '--db-filename', path.join(opts.stateDir, 'temporal.db'), '--namespace', 'default', '--log-level', 'warn',
    ...SEARCH_ATTRIBUTES.flatMap((a) => ['--search-attribute', a])];
  // Its own process group: Ctrl-C reaches backupctl, which stops the worker first and the server last.
  const child = spawn(bin, args, { stdio: ['ignore', out, out], detached: true, env: childEnv() });
  const address = `127.0.0.1:${port}`;
  let exited = false;
  // A binary that cannot be run (no execute bit, a directory) gives 'error' and no 'exit'; unheard, it would throw.
  let spawnError: Error | undefined;
  child.on('exit', () => { exited = true; });
  child.once('error', (err) => { spawnError = err; exited = true; });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (spawnError) {
      throw new BackupError('TEMPORAL_UNAVAILABLE', `cannot run the Temporal CLI ${bin}: ${spawnError.message}`, {
        hint: 'TEMPORAL_CLI_PATH (or `temporal` on PATH, or .tools/bin/temporal) must be the temporal executable; scripts/install-temporal.sh builds one',
      });
    }
    if (exited) throw new BackupError('TEMPORAL_UNAVAILABLE', `the Temporal dev server exited at start; see ${logFile}`, { hint: `is port ${port} or ${uiPort} in use?` });
    const h = await run(bin, ['operator', 'cluster', 'health', '--address', address]).catch(() => undefined);
    if (h?.code === 0) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new BackupError('TEMPORAL_UNAVAILABLE', `the Temporal dev server did not answer within 60 s; see ${logFile}`);
    }
    // It answers about 0.3 s after it starts: checking often gets the worker going as soon as it does.
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    address, uiUrl: `http://localhost:${uiPort}`, process: child,
    stop: () => new Promise<void>((resolve) => {
      if (exited) return resolve();
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => { clearTimeout(t); resolve(); });
      child.kill('SIGTERM');
    }),
  };
}

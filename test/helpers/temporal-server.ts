import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { getFreePort } from './free-port.js';
import { LogBuffer, watchExit, runCommand, sleep } from './util.js';

/** Search attributes the dev server registers for backupctl's workflows. */
export const TEST_SEARCH_ATTRIBUTES: Readonly<Record<string, 'Keyword'>> = {
  BackupJob: 'Keyword',
  BackupType: 'Keyword',
  BackupOutcome: 'Keyword',
};

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const INSTALL_SCRIPT = fileURLToPath(new URL('../../scripts/install-temporal.sh', import.meta.url));

let cliPathPromise: Promise<string> | undefined;

/**
 * Path of the Temporal CLI: `$TEMPORAL_CLI_PATH` if it is executable, otherwise whatever
 * scripts/install-temporal.sh prints (which may build the CLI with `go install`; minutes).
 * The result is cached for the life of the process.
 */
export function resolveTemporalCli(): Promise<string> {
  cliPathPromise ??= findTemporalCli().catch((err: unknown) => {
    cliPathPromise = undefined;
    throw err;
  });
  return cliPathPromise;
}

async function findTemporalCli(): Promise<string> {
  const fromEnv = process.env.TEMPORAL_CLI_PATH;
  if (fromEnv) {
    try {
      await access(fromEnv, fsConstants.X_OK);
      return fromEnv;
    } catch {
      // fall through to the install script, which reports the problem
    }
  }
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [INSTALL_SCRIPT], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.once('error', reject);
    child.once('close', (code) => {
      const path = stdout.trim().split('\n').pop()?.trim() ?? '';
      if (code === 0 && path) resolve(path);
      else reject(new Error(`scripts/install-temporal.sh failed (exit ${code}); set TEMPORAL_CLI_PATH to a temporal CLI binary`));
    });
  });
}

export interface TemporalDevServerOptions {
  /** Persist state in this SQLite file (default: in memory). */
  dbFile?: string;
  /** Serve the Web UI on this port (default: headless). */
  uiPort?: number;
  /** More arguments for `temporal server start-dev`. */
  extraArgs?: readonly string[];
  /** How long to wait for the server to report healthy (default 60 s). */
  startTimeoutMs?: number;
}

export interface TemporalDevServer {
  /** host:port of the frontend gRPC service, e.g. "127.0.0.1:41234". */
  address: string;
  namespace: string;
  port: number;
  /** PID of the `temporal server start-dev` process. */
  pid: number;
  /** Path of the CLI binary that runs the server. */
  cliPath: string;
  /** The server's stdout and stderr so far. */
  log(): string;
  /** SIGTERM, wait for exit; SIGKILL after 10 s. Idempotent. */
  stop(): Promise<void>;
}

/** `temporal operator cluster health` against `address`; true when it exits 0. */
export async function temporalHealthy(cliPath: string, address: string, timeoutMs = 5_000): Promise<boolean> {
  const result = await runCommand(cliPath, ['operator', 'cluster', 'health', '--address', address], { timeoutMs });
  return result.code === 0;
}

/**
 * Start `temporal server start-dev` on a free loopback port and wait until it is healthy.
 * The server runs until `stop()` (or until this process exits).
 */
export async function startTemporalDevServer(opts: TemporalDevServerOptions = {}): Promise<TemporalDevServer> {
  const cliPath = await resolveTemporalCli();
  const attempts = 3;
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const port = await getFreePort();
    try {
      return await startOnce(cliPath, port, opts);
    } catch (err) {
      lastError = err as Error;
      if (!(err instanceof PortClashError)) throw err;
    }
  }
  throw lastError ?? new Error('could not start the Temporal dev server');
}

class PortClashError extends Error {}

async function startOnce(cliPath: string, port: number, opts: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const namespace = 'default';
  const address = `127.0.0.1:${port}`;
  const args = [
    'server', 'start-dev',
    '--ip', '127.0.0.1',
    '--port', String(port),
    ...(opts.uiPort === undefined ? ['--headless'] : ['--ui-port', String(opts.uiPort)]),
    '--log-level', 'warn',
    '--namespace', namespace,
    // As @temporalio/testing passes them: no phoning home for version checks, updates enabled.
    '--dynamic-config-value', 'frontend.enableServerVersionCheck=false',
    '--dynamic-config-value', 'frontend.enableUpdateWorkflowExecution=true',
    '--dynamic-config-value', 'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
    ...Object.entries(TEST_SEARCH_ATTRIBUTES).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]),
    ...(opts.dbFile === undefined ? [] : ['--db-filename', opts.dbFile]),
    ...(opts.extraArgs ?? []),
  ];

  const logs = new LogBuffer();
  const child = spawn(cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (chunk: Buffer) => logs.append(chunk));
  child.stderr.on('data', (chunk: Buffer) => logs.append(chunk));

  const watched = watchExit(child, logs);
  const exitPromise = watched.done;
  const killOnExit = (): void => {
    if (!watched.exited()) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!watched.exited()) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exitPromise;
        clearTimeout(timer);
      }
      process.removeListener('exit', killOnExit);
    })();
    return stopping;
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  for (;;) {
    if (watched.exited()) {
      await stop();
      const text = logs.toString();
      const message = `temporal server start-dev exited before becoming healthy (port ${port}):\n${text}`;
      if (/address already in use/i.test(text)) throw new PortClashError(message);
      throw new Error(message);
    }
    if (await temporalHealthy(cliPath, address)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`temporal server start-dev on ${address} not healthy after ${opts.startTimeoutMs ?? 60_000} ms:\n${logs.toString()}`);
    }
    await sleep(250);
  }

  return {
    address,
    namespace,
    port,
    pid: child.pid as number,
    cliPath,
    log: () => logs.toString(),
    stop,
  };
}

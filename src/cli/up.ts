import { loadConfig } from '../config/load.js';
import { startDevServer, type DevServer } from '../runtime/dev-server.js';
import { EXIT } from './output.js';
import { runCommand } from './run.js';

/**
 * `backupctl up`: the embedded Temporal dev server (state in SQLite under stateDir, Web UI on 8233) unless
 * TEMPORAL_ADDRESS points elsewhere, and the worker. Ctrl-C stops the worker, then the server.
 * With `--run JOB`, starts that job once the worker is ready; `--exit` stops everything when it is done.
 */
export async function upCommand(opts: { config?: string; run?: string; exit?: boolean; port?: string; uiPort?: string; installRuntime: () => Promise<void> }): Promise<number> {
  const { file, config } = loadConfig(opts.config);
  let server: DevServer | undefined;
  const starting = process.env.TEMPORAL_ADDRESS ? undefined
    : startDevServer({ stateDir: config.stateDir, port: opts.port ? Number(opts.port) : undefined, uiPort: opts.uiPort ? Number(opts.uiPort) : undefined });
  // The Temporal SDK and the worker's code load (a few tenths of a second) while the dev server starts.
  const loading = opts.installRuntime().then(() => import('../runtime/worker.js'));
  let runWorkers: Awaited<typeof loading>['runWorkers'];
  try {
    [server, { runWorkers }] = await Promise.all([starting, loading]);
  } catch (err) {
    // Neither may be left behind: a server that started while the SDK failed to load is stopped again.
    const started = await starting?.catch(() => undefined);
    await loading.catch(() => undefined);
    await started?.stop();
    throw err;
  }
  if (server) {
    process.env.TEMPORAL_ADDRESS = server.address;
    process.stderr.write(`Temporal dev server at ${server.address}, Web UI ${server.uiUrl} (state: ${config.stateDir}/temporal.db)\n`);
  }
  const controller = new AbortController();
  const onSignal = () => {
    process.stderr.write('\nstopping the worker...\n');
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let code: number = EXIT.OK;
  try {
    await runWorkers({
      configFile: file, signal: controller.signal, applySchedules: true,
      onReady: (queues) => {
        process.stderr.write(`worker polling task queue(s) ${queues.join(', ')}; Ctrl-C to stop\n`);
        if (opts.run) {
          runCommand(opts.run, { config: file, type: 'full', wait: true })
            .then((c) => { code = c; }, (err: unknown) => { process.stderr.write(`backupctl: ${(err as Error).message}\n`); code = EXIT.FAILED; })
            .finally(() => { if (opts.exit) controller.abort(); });
        }
      },
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (server) {
      process.stderr.write('stopping the Temporal dev server...\n');
      await server.stop();
    }
  }
  return code;
}

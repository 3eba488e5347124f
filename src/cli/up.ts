import { loadConfig } from '../config/load.js';
import { startDevServer, type DevServer } from '../runtime/dev-server.js';
import { runWorkers } from '../runtime/worker.js';
import { EXIT } from './output.js';
import { runCommand } from './run.js';

/**
 * `backupctl up`: the embedded Temporal dev server (state in SQLite under stateDir, Web UI on 8233) unless
 * TEMPORAL_ADDRESS points elsewhere, and the worker. Ctrl-C stops the worker, then the server.
 * With `--run JOB`, starts that job once the worker is ready; `--exit` stops everything when it is done.
 */
export async function upCommand(opts: { config?: string; run?: string; exit?: boolean; port?: string; uiPort?: string }): Promise<number> {
  const { file, config } = loadConfig(opts.config);
  let server: DevServer | undefined;
  if (!process.env.TEMPORAL_ADDRESS) {
    server = await startDevServer({ stateDir: config.stateDir, port: opts.port ? Number(opts.port) : undefined, uiPort: opts.uiPort ? Number(opts.uiPort) : undefined });
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

import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { stringify } from 'yaml';
import { createWorkers } from '../src/runtime/worker.js';
import type { SshdHandle } from '../test/helpers/sshd.js';
import { startTemporalDevServer, type TemporalDevServer } from '../test/helpers/temporal-server.js';

/** Writes a bench config: one job whose only destination is the loopback sshd (host key pinned). */
export async function writeSftpJobConfig(dir: string, name: string, sshd: SshdHandle, jobs: Record<string, unknown>): Promise<{ configFile: string; stateDir: string; taskQueue: string }> {
  const stateDir = path.join(dir, `${name}-state`);
  const taskQueue = `${name}-${process.pid}`;
  const configFile = path.join(dir, `${name}.yml`);
  await writeFile(configFile, stringify({
    stateDir,
    temporal: { taskQueue, uiUrl: 'http://localhost:8233' },
    settings: { heartbeatTimeout: '60s' },
    destinations: {
      nas: {
        type: 'sftp', host: sshd.host, port: sshd.port, user: sshd.user, privateKey: sshd.clientKeyPath,
        hostKey: sshd.hostKeyFingerprint, path: sshd.root,
      },
    },
    jobs,
  }));
  return { configFile, stateDir, taskQueue };
}

let runtimeInstalled = false;

export interface BenchTemporal {
  server: TemporalDevServer;
  client: Client;
  workers: Awaited<ReturnType<typeof createWorkers>>;
  configFile: string;
  stateDir: string;
  taskQueue: string;
  /** Dev server start, and worker creation (workflow bundling included), seconds. */
  temporalStartSeconds: number;
  workerCreateSeconds: number;
}

/**
 * A comparison's Temporal side: its own dev server, the SDK runtime (installed once per process), a client, and
 * in-process workers for a bench config (see writeSftpJobConfig). Everything is closed through `onCleanup`.
 */
export async function startBenchTemporal(dir: string, name: string, sshd: SshdHandle, jobs: Record<string, unknown>, onCleanup: (fn: () => Promise<void>) => void): Promise<BenchTemporal> {
  let t = Date.now();
  const server = await startTemporalDevServer();
  onCleanup(() => server.stop());
  const temporalStartSeconds = (Date.now() - t) / 1000;
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
    runtimeInstalled = true;
  }
  const native = await NativeConnection.connect({ address: server.address });
  onCleanup(() => native.close());
  const connection = await Connection.connect({ address: server.address });
  onCleanup(() => connection.close());
  const client = new Client({ connection, namespace: 'default' });
  const cfg = await writeSftpJobConfig(dir, name, sshd, jobs);
  t = Date.now();
  const workers = await createWorkers({ configFile: cfg.configFile, connection: native, namespace: 'default' });
  onCleanup(() => workers.close());
  return { server, client, workers, ...cfg, temporalStartSeconds, workerCreateSeconds: (Date.now() - t) / 1000 };
}

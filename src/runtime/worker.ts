import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { loadConfig, workerQueues } from '../config/load.js';
import { closeDestinations } from '../destinations/index.js';
import { applySchedules } from '../schedules/index.js';
import { ensureSigningKey } from '../state/keys.js';
import { workflowBundle } from './bundle.js';
import { backupMetricsAddress, startMetricsServer, type MetricsServer } from './metrics-server.js';
import { connectClient, connectNative, ensureSearchAttributes } from './temporal.js';

export interface WorkerOptions {
  configFile: string;
  connection?: NativeConnection;
  namespace?: string;
  /** The task queues to poll (`backupctl worker --queue`); default `worker.queues`, else every job's queue. */
  queues?: string[];
  /**
   * Poll exactly these queues, whether or not the config names them: the private queue of a `restore` or `drill`
   * that found no worker serving the job's queue.
   */
  privateQueue?: string;
  /** The worker identity recorded in the activity and workflow task histories (default: Temporal's `<pid>@<host>`). */
  identity?: string;
  /**
   * Run the workflow code on the main thread instead of a workflow thread of its own: the worker is created in about
   * 50 ms instead of 300 (the thread's start-up and its own load of the SDK), for the one short workflow of a `restore`
   * or `drill` that runs its own worker. Workflow activations still end after 5 s (isolateExecutionTimeout), as on a
   * thread.
   */
  mainThreadWorkflows?: boolean;
  /** Replace or wrap activities (tests inject faults between steps this way). */
  activities?: (a: ReturnType<typeof createActivities>) => ReturnType<typeof createActivities>;
}

/**
 * Creates one Temporal worker per task queue this host serves: `queues`, else the config's `worker.queues`, else every
 * queue the config's jobs use. Every activity of a run executes on the job's queue, i.e. on the host that holds the
 * run's staging folder, so a host whose config is shared with others polls only its own queues.
 */
export async function createWorkers(opts: WorkerOptions): Promise<{ workers: Worker[]; taskQueues: string[]; close(): Promise<void> }> {
  const { config } = loadConfig(opts.configFile);
  const taskQueues = opts.privateQueue ? [opts.privateQueue] : workerQueues(config, opts.queues);
  // The key that signs manifests and drill reports: created on the first start when none is configured.
  ensureSigningKey(config);
  const own = opts.connection ? undefined : await connectNative();
  const connection = opts.connection ?? own!.connection;
  const namespace = opts.namespace ?? own?.namespace ?? 'default';
  let activities = createActivities({ configFile: opts.configFile });
  if (opts.activities) activities = opts.activities(activities);
  const workflowBundleCode = await workflowBundle();
  const workers = await Promise.all(taskQueues.map((taskQueue) => Worker.create({
    connection, namespace, taskQueue, activities, workflowBundle: workflowBundleCode, ...(opts.identity ? { identity: opts.identity } : {}),
    shutdownGraceTime: '10s', maxConcurrentActivityTaskExecutions: 4,
    // The SDK's default cache follows the heap limit (about 2,300 workflows with a 4 GiB heap); a worker runs a few
    // runs and a job lock per job at once, and an evicted workflow is only replayed from its history when it is next
    // woken up, so a bounded cache keeps memory flat without slowing a run.
    maxCachedWorkflows: 200,
    // Progress (bytes done) reaches the server, the Web UI and `run --wait` every second, not every 48 s.
    maxHeartbeatThrottleInterval: '1s', defaultHeartbeatThrottleInterval: '1s',
    // The SDK's `debugMode` runs the workflows in this thread; its unlimited activation time is set back to the default.
    ...(opts.mainThreadWorkflows ? { debugMode: true, isolateExecutionTimeout: '5s' } : {}),
  })));
  return {
    workers, taskQueues,
    async close() {
      await closeDestinations();
      if (own) await own.connection.close();
    },
  };
}

/** Registers the search attributes and, if `monitoring.applyOnStart`, reconciles the schedules with the config. */
async function registerWithServer(configFile: string): Promise<void> {
  const { config } = loadConfig(configFile);
  const { client, namespace } = await connectClient();
  try {
    const added = await ensureSearchAttributes(client, namespace);
    if (added.length) process.stderr.write(`registered search attributes ${added.join(', ')}\n`);
    if (config.monitoring.applyOnStart) {
      for (const c of await applySchedules(client, config)) if (c.action !== 'unchanged') process.stderr.write(`schedule ${c.action}: ${c.id} (${c.description})\n`);
    }
  } finally {
    await client.connection.close();
  }
}

/**
 * Runs the workers until `signal` aborts. With `applySchedules`, first registers the search attributes and, if
 * `monitoring.applyOnStart`, reconciles the schedules with the config.
 */
export async function runWorkers(opts: WorkerOptions & { signal?: AbortSignal; applySchedules?: boolean; onReady?: (taskQueues: string[]) => void }): Promise<void> {
  const registered = opts.applySchedules ? registerWithServer(opts.configFile) : Promise.resolve();
  // The workers are created (their workflow thread started, the workflow bundle loaded) while the search attributes
  // and schedules are checked; they poll only after both are done.
  const created = createWorkers(opts);
  const [w] = await Promise.all([created, registered]).catch(async (err: unknown) => {
    // Workers that were created but will not serve: run them for no time, which ends their threads, then close.
    await created.then(async (c) => {
      await Promise.all(c.workers.map((worker) => worker.runUntil(Promise.resolve()).catch(() => undefined)));
      await c.close();
    }, () => undefined);
    await registered.catch(() => undefined);
    throw err;
  });
  // backupctl's backup metrics and live report, beside the SDK's metrics (README, "Metrics").
  let metrics: { server: MetricsServer; close(): Promise<void> } | undefined;
  const { config } = loadConfig(opts.configFile);
  if (config.metrics) {
    const { client, connection } = await connectClient();
    const address = backupMetricsAddress(config.metrics);
    try {
      const server = await startMetricsServer({ config, client, ...address });
      metrics = { server, close: async () => { await server.close(); await connection.close(); } };
      process.stderr.write(`backup metrics on ${server.url}/metrics, report on ${server.url}/report\n`);
    } catch (err) {
      // The worker still backs up; Prometheus sees the target down.
      await connection.close();
      process.stderr.write(`backupctl: backup metrics not served: cannot listen on ${address.host}:${address.port} (metrics.backups): ${(err as Error).message}\n`);
    }
  }
  const stop = () => { for (const worker of w.workers) if (worker.getState() === 'RUNNING') worker.shutdown(); };
  opts.signal?.addEventListener('abort', stop, { once: true });
  try {
    const running = Promise.all(w.workers.map((worker) => worker.run()));
    opts.onReady?.(w.taskQueues);
    await running;
  } finally {
    opts.signal?.removeEventListener('abort', stop);
    await metrics?.close();
    await w.close();
  }
}

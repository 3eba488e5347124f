import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { loadConfig, workerQueues } from '../config/load.js';
import { closeDestinations } from '../destinations/index.js';
import { applySchedules } from '../schedules/index.js';
import { ensureSigningKey } from '../state/keys.js';
import { connectClient, connectNative, ensureSearchAttributes } from './temporal.js';

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** The workflow code, bundled once per process (compiled `.js` when installed, `.ts` under the test runner). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  const js = fileURLToPath(new URL('../workflows/index.js', import.meta.url));
  const workflowsPath = existsSync(js) ? js : fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
  bundle ??= bundleWorkflowCode({ workflowsPath, logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } as never });
  return bundle;
}

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
    // Progress (bytes done) reaches the server, the Web UI and `run --wait` every second, not every 48 s.
    maxHeartbeatThrottleInterval: '1s', defaultHeartbeatThrottleInterval: '1s',
  })));
  return {
    workers, taskQueues,
    async close() {
      await closeDestinations();
      if (own) await own.connection.close();
    },
  };
}

/**
 * Runs the workers until `signal` aborts. With `applySchedules`, first registers the search attributes and, if
 * `monitoring.applyOnStart`, reconciles the schedules with the config.
 */
export async function runWorkers(opts: WorkerOptions & { signal?: AbortSignal; applySchedules?: boolean; onReady?: (taskQueues: string[]) => void }): Promise<void> {
  if (opts.applySchedules) {
    const { config } = loadConfig(opts.configFile);
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
  const w = await createWorkers(opts);
  const stop = () => { for (const worker of w.workers) if (worker.getState() === 'RUNNING') worker.shutdown(); };
  opts.signal?.addEventListener('abort', stop, { once: true });
  try {
    const running = Promise.all(w.workers.map((worker) => worker.run()));
    opts.onReady?.(w.taskQueues);
    await running;
  } finally {
    opts.signal?.removeEventListener('abort', stop);
    await w.close();
  }
}

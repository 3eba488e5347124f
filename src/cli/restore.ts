import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { Worker } from '@temporalio/worker';
import { deploymentOf, getJob, loadConfig, taskQueueOf } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { RESTORE_WORKFLOW, restoreWorkflowId, type RestoreInput, type RestoreResult } from '../contracts/restore.js';
import { BackupError, errorMessage } from '../errors.js';
import { formatBytes } from '../lib/format.js';
import { parseIntoDatabases } from '../restore/targets.js';
import { awaitPickup, queuePollers } from '../runtime/pollers.js';
import { connectClient } from '../runtime/temporal.js';
import { signingKeyFiles } from '../state/keys.js';
import { EXIT, uiLink } from './output.js';
import { progressMode, progressTicker } from './progress.js';

export interface InProcessOptions {
  config?: string;
  /** false: never run an in-process worker; the workflow goes to the job's task queue, where a worker must serve it. */
  worker?: boolean;
  /** How long to wait for a worker to pick the workflow up before giving up (default 60 s). */
  workerWaitMs?: number;
  json?: boolean;
  /**
   * Installs the Temporal SDK's runtime (logger, metrics; src/cli/index.ts) before an in-process worker is created.
   * Called only when one may be: never with `worker: false`, which loads no worker code at all.
   */
  installRuntime?: () => Promise<void>;
  /** What creates the in-process worker; default the SDK's worker for this config (a test puts a stand-in here). */
  createOwnWorkers?: CreateOwnWorkers;
}

/** Where the CLI's workflow runs and how to await a worker for it (see `withClientAndWorker`). */
export interface Placement {
  client: Client;
  namespace: string;
  /** The task queue to start the workflow on. */
  taskQueue: string;
  /** Waits (bounded) until a worker picked the started workflow up; terminates it and throws NO_WORKER otherwise. */
  picked(handle: WorkflowHandle): Promise<void>;
  /**
   * The workflow's result. On the in-process worker's queue, that worker failing first fails it too (NO_WORKER), and
   * the workflow, which nothing would run any more, is terminated.
   */
  result(handle: WorkflowHandle): Promise<unknown>;
}

export const DEFAULT_WORKER_WAIT_MS = 60_000;
/** A worker that polled the job's queue lately picks a new workflow up at once; one that does not within this is gone. */
const SERVED_PICKUP_MS = 10_000;

/** The CLI's in-process worker on its private queue, running (polling) from the moment it is created. */
export interface OwnWorker {
  /** Settles once the worker polls its queue; rejects when it could not be created. */
  ready: Promise<void>;
  /**
   * Rejects (NO_WORKER) if the worker, once running, ends before `stop()`: a fatal error of the SDK or the server. A
   * workflow on its private queue would otherwise wait for good. Never resolves.
   */
  failed: Promise<never>;
  /** Shuts the worker down (if it runs), waits for it to end, closes its connection and destinations. */
  stop(): Promise<void>;
}

/** What `startOwnWorker` runs: src/runtime/worker.ts's `createWorkers` for the private queue (a test's own in unit tests). */
export type CreateOwnWorkers = () => Promise<{ workers: Pick<Worker, 'run' | 'shutdown' | 'getState'>[]; close(): Promise<void> }>;

/**
 * Creates the in-process worker for `privateQueue` in the background, and runs it as soon as it exists: the SDK's
 * runtime is installed and the worker code loaded only here, while the caller connects, decides and starts its
 * workflow. The worker runs the workflow code in the main thread (`mainThreadWorkflows`): a workflow thread would take
 * 300 ms to start, for the one short workflow of this command.
 */
export function startOwnWorker(opts: InProcessOptions, file: string, privateQueue: string, create?: CreateOwnWorkers): OwnWorker {
  let stopped = false;
  let installed = false;
  const created = (async () => {
    if (create) return create();
    if (opts.installRuntime) {
      await opts.installRuntime();
      installed = true;
    }
    const { createWorkers } = await import('../runtime/worker.js');
    return createWorkers({ configFile: file, privateQueue, mainThreadWorkflows: true });
  })();
  let running: Promise<unknown> | undefined;
  const hint = 'its workflow was terminated; run the command again (or with `backupctl worker` running, with --no-worker)';
  let fail!: (err: BackupError) => void;
  const failed = new Promise<never>((_, reject) => { fail = reject; });
  failed.catch(() => undefined);
  const ready = created.then((w) => {
    running = Promise.all(w.workers.map((x) => x.run()));
    // Handled here, at once: a rejection waiting for stop() would be unhandled, and end the command without its cleanup.
    running.then(
      () => { if (!stopped) fail(new BackupError('NO_WORKER', 'the in-process worker stopped before its workflow ended', { hint })); },
      (err: unknown) => { if (!stopped) fail(new BackupError('NO_WORKER', `the in-process worker failed: ${errorMessage(err)}`, { cause: err, hint })); },
    );
    // Stopped before it was created (the command failed early): it runs for no time, which ends it.
    if (stopped) for (const x of w.workers) if (x.getState() === 'RUNNING') x.shutdown();
  });
  ready.catch(() => undefined);
  return {
    ready,
    failed,
    async stop() {
      stopped = true;
      const w = await created.catch(() => undefined);
      if (w) {
        await ready.catch(() => undefined);
        for (const x of w.workers) if (x.getState() === 'RUNNING') x.shutdown();
        await running?.catch(() => undefined);
        await w.close();
      } else if (installed) {
        // The SDK's runtime ends with its last worker; without one it would keep the process alive.
        const { Runtime } = await import('@temporalio/worker');
        await Runtime.instance().shutdown();
      }
    },
  };
}

/**
 * Whether the in-process worker can be created before it is known to be needed: creating it has no lasting effect
 * then. It has one when the signing key is still to be created (the first start on this host), which only a worker
 * this command actually runs should do.
 */
function ownWorkerIsSideEffectFree(config: Config): boolean {
  return existsSync(signingKeyFiles(config).privateFile);
}

/**
 * Connects and decides where one workflow of the job runs, so that the CLI never competes with a running worker:
 * - a worker already serves the job's task queue (it polled it lately, per DescribeTaskQueue): the workflow runs there,
 *   on that worker, and the CLI runs none (if it does not pick the workflow up within 10 s, it has stopped since: the
 *   workflow is terminated and started again as below);
 * - no worker serves it: the CLI runs an in-process worker on a private queue of its own (`backupctl-cli-<uuid>`) for
 *   this one workflow, so it takes no other job's tasks and leaves nothing half done on the job's queue when it exits;
 * - `worker: false` (`--no-worker`): the job's queue, and a bounded wait for its worker.
 * Unless `worker: false`, the in-process worker is created while the client connects and asks (when that has no
 * lasting effect, see ownWorkerIsSideEffectFree), and the workflow is started on its queue while it is still being
 * created; when a worker serves the job's queue it stays idle until the end (and is ready if that worker does not
 * pick the workflow up). `warm`: what the workflow's first step will need in this process, begun while the worker
 * starts, only when the workflow runs on it.
 */
export async function withClientAndWorker<T>(opts: InProcessOptions, jobQueue: string, fn: (p: Placement) => Promise<T>, warm?: () => Promise<void>): Promise<T> {
  const { file, config } = loadConfig(opts.config);
  const waitMs = opts.workerWaitMs ?? DEFAULT_WORKER_WAIT_MS;
  const privateQueue = `backupctl-cli-${randomUUID()}`;
  let own = opts.worker !== false && ownWorkerIsSideEffectFree(config) ? startOwnWorker(opts, file, privateQueue, opts.createOwnWorkers) : undefined;
  let warming: Promise<void> | undefined;
  try {
    const { client, namespace } = await connectClient();
    const placement = (taskQueue: string, ms: number): Placement => ({
      client, namespace, taskQueue, picked: (handle) => awaitPickup(client, namespace, handle, taskQueue, ms), result: (handle) => handle.result(),
    });
    try {
      if (opts.worker === false) return await fn(placement(jobQueue, waitMs));
      const pollers = await queuePollers(client, namespace, jobQueue);
      if (pollers.length > 0) {
        if (!opts.json) process.stderr.write(`a worker serves task queue ${jobQueue} (${pollers.join(', ')}): running there\n`);
        try {
          return await fn(placement(jobQueue, Math.min(waitMs, SERVED_PICKUP_MS)));
        } catch (err) {
          // The worker seen lately has stopped since (DescribeTaskQueue remembers pollers for minutes).
          if (!(err instanceof BackupError && err.code === 'NO_WORKER')) throw err;
          if (!opts.json) process.stderr.write(`no worker picked it up on ${jobQueue}; running it in this process instead\n`);
        }
      }
      own ??= startOwnWorker(opts, file, privateQueue, opts.createOwnWorkers);
      // What the workflow's first step will do on this process's worker, done while that worker starts (best effort).
      warming = warm?.().catch(() => undefined);
      const { ready, failed } = own;
      /**
       * `p` (a wait on the workflow), unless the in-process worker fails first: then a workflow that has not ended is
       * terminated and the worker's error thrown; one that ended just before the worker settles `p` as usual.
       */
      const unlessWorkerFails = <R>(handle: WorkflowHandle, p: Promise<R>): Promise<R> => Promise.race([p, failed.catch(async (err: unknown): Promise<R> => {
        const status = await handle.describe().then((d) => d.status.name, () => undefined);
        if (status !== undefined && status !== 'RUNNING') return p;
        await handle.terminate('the in-process worker failed').catch(() => undefined);
        throw err;
      })]);
      return await fn({
        result: (handle) => unlessWorkerFails(handle, handle.result()),
        client, namespace, taskQueue: privateQueue,
        // The workflow may be started before the worker polls: its first task waits on the queue until then.
        picked: async (handle) => {
          try {
            await ready;
          } catch (err) {
            // Nothing will ever poll the private queue: the workflow must not wait there for good.
            await handle.terminate('the in-process worker could not be created').catch(() => undefined);
            throw err;
          }
          await unlessWorkerFails(handle, awaitPickup(client, namespace, handle, privateQueue, waitMs));
        },
      });
    } finally {
      // The worker first (it answers the progress queries until the end), then the client's connection.
      await warming;
      await own?.stop();
      own = undefined;
      await client.connection.close();
    }
  } finally {
    // Connecting failed: the worker created meanwhile is not needed.
    await own?.stop();
  }
}

/**
 * Opens the destination the restore's plan reads first (`--destination`, else the job's first), in this process whose
 * worker will run the plan: the pooled connection (src/destinations/pool.ts) is then the plan's and the fetch's, and
 * the SSH handshake overlaps the worker's start instead of following it. Only for destinations whose connections are
 * pooled; any failure is left for the plan to meet and report.
 */
async function warmDestination(config: Config, name: string): Promise<void> {
  const { destinationPlugin, withDestination } = await import('../destinations/index.js');
  const cfg = config.destinations[name];
  if (!cfg || !destinationPlugin(cfg.type).reuse) return;
  await withDestination(config, name, () => Promise.resolve());
}

export interface RestoreOptions extends InProcessOptions {
  backup?: string;
  at?: string;
  to: string;
  destination?: string;
  intoDatabases?: string[];
  /** Also restore a backup whose manifest signature does not verify (disaster recovery). */
  trustUnsigned?: boolean;
  /** An encrypted backup: the age identity file (its path goes to the worker, never its contents). */
  identity?: string;
}

/** `backupctl restore <job> --to DIR`: starts the restore workflow, follows it, prints the result. Exit 0 or 1. */
export async function restoreCommand(jobName: string, opts: RestoreOptions): Promise<number> {
  const { config } = loadConfig(opts.config);
  const job = getJob(config, jobName);
  if (opts.backup && opts.at) throw new BackupError('CONFIG_INVALID', 'give --backup or --at, not both');
  if (opts.at && Number.isNaN(Date.parse(opts.at))) throw new BackupError('CONFIG_INVALID', `--at "${opts.at}" is not an ISO time (e.g. 2025-11-04T03:00:00Z)`);
  if (opts.destination && !job.destinations.includes(opts.destination)) throw new BackupError('CONFIG_INVALID', `job ${jobName} has no destination "${opts.destination}" (it has ${job.destinations.join(', ')})`);
  const input: RestoreInput = { job: jobName, to: path.resolve(opts.to) };
  if (opts.backup) input.backup = opts.backup;
  if (opts.at) input.at = new Date(opts.at).toISOString();
  if (opts.destination) input.destination = opts.destination;
  if (opts.intoDatabases?.length) input.intoDatabases = parseIntoDatabases(opts.intoDatabases);
  if (opts.identity) input.identity = path.resolve(opts.identity);
  if (opts.trustUnsigned) {
    input.trustUnsigned = true;
    if (!opts.json) process.stderr.write('WARNING: --trust-unsigned: a backup whose manifest signature does not verify may be restored; nothing would then prove it was made by this deployment\n');
  }
  return withClientAndWorker(opts, taskQueueOf(config, job), async ({ client, namespace, taskQueue, picked, result }) => {
    const workflowId = restoreWorkflowId(deploymentOf(config), jobName, new Date());
    let handle;
    try {
      handle = await client.workflow.start(RESTORE_WORKFLOW, {
        taskQueue, workflowId, args: [input], workflowIdConflictPolicy: 'FAIL',
        staticSummary: `restore ${jobName} into ${input.to}`,
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) throw new BackupError('RESTORE_TARGET_EXISTS', `a restore of ${jobName} started this second already runs (${workflowId}); try again`);
      throw err;
    }
    const link = uiLink(config.temporal.uiUrl, namespace, workflowId);
    if (!opts.json) process.stderr.write(`started ${workflowId}\n${link}\n`);
    await picked(handle);
    const stop = progressTicker(handle, progressMode(opts.json));
    try {
      const r = (await result(handle)) as RestoreResult;
      await stop();
      if (r.warning && !opts.json) process.stderr.write(`WARNING: ${r.warning}\n`);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ ...r, link })}\n`);
      } else {
        process.stdout.write(`restored ${r.backup.type} backup of slot ${r.backup.slot} (${r.backup.workflowId}) from ${r.destination} into ${r.to} in ${(r.durationMs / 1000).toFixed(1)} s\n`);
        for (const a of r.chain) process.stdout.write(`  checked ${a.path}: ${formatBytes(a.size)} sha256 ${a.sha256}\n`);
        for (const c of r.components) process.stdout.write(`  ${c.name} (${c.type}) → ${c.path}${c.files !== undefined ? `: ${c.files} files, ${formatBytes(c.bytes ?? 0)}` : ''}\n`);
        for (const d of r.databases) process.stdout.write(`  loaded ${d.source}.${d.database} into database ${d.target}\n`);
        if (r.warning) process.stdout.write(`WARNING: ${r.warning}\n`);
      }
      return EXIT.OK;
    } catch (err) {
      await stop();
      if (!(err instanceof WorkflowFailedError)) throw err;
      const cancelled = err.cause instanceof CancelledFailure;
      const message = cancelled ? 'cancelled' : err.cause?.message ?? err.message;
      const code = (err.cause as { type?: string } | undefined)?.type;
      if (opts.json) process.stdout.write(`${JSON.stringify({ status: cancelled ? 'cancelled' : 'failed', workflowId, code, error: message, link })}\n`);
      else process.stderr.write(`${cancelled ? 'cancelled' : 'failed'}: ${message}\n${link}\n`);
      return EXIT.FAILED;
    }
  }, () => warmDestination(config, input.destination ?? job.destinations[0]!));
}

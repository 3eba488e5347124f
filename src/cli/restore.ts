import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { getJob, loadConfig, taskQueueOf } from '../config/load.js';
import { RESTORE_WORKFLOW, restoreWorkflowId, type RestoreInput, type RestoreResult } from '../contracts/restore.js';
import { BackupError } from '../errors.js';
import { formatBytes } from '../lib/format.js';
import { parseIntoDatabases } from '../restore/targets.js';
import { awaitPickup, queuePollers } from '../runtime/pollers.js';
import { connectClient } from '../runtime/temporal.js';
import { createWorkers } from '../runtime/worker.js';
import { Runtime } from '@temporalio/worker';
import { EXIT, uiLink } from './output.js';
import { progressMode, progressTicker } from './progress.js';

export interface InProcessOptions {
  config?: string;
  /** false: never run an in-process worker; the workflow goes to the job's task queue, where a worker must serve it. */
  worker?: boolean;
  /** How long to wait for a worker to pick the workflow up before giving up (default 60 s). */
  workerWaitMs?: number;
  json?: boolean;
}

/** Where the CLI's workflow runs and how to await a worker for it (see `withClientAndWorker`). */
export interface Placement {
  client: Client;
  namespace: string;
  /** The task queue to start the workflow on. */
  taskQueue: string;
  /** Waits (bounded) until a worker picked the started workflow up; terminates it and throws NO_WORKER otherwise. */
  picked(handle: WorkflowHandle): Promise<void>;
}

export const DEFAULT_WORKER_WAIT_MS = 60_000;
/** A worker that polled the job's queue lately picks a new workflow up at once; one that does not within this is gone. */
const SERVED_PICKUP_MS = 10_000;

/**
 * Connects and decides where one workflow of the job runs, so that the CLI never competes with a running worker:
 * - a worker already serves the job's task queue (it polled it lately, per DescribeTaskQueue): the workflow runs there,
 *   on that worker, and the CLI runs none (if it does not pick the workflow up within 10 s, it has stopped since: the
 *   workflow is terminated and started again as below);
 * - no worker serves it: the CLI runs an in-process worker on a private queue of its own (`backupctl-cli-<uuid>`) for
 *   this one workflow, so it takes no other job's tasks and leaves nothing half done on the job's queue when it exits;
 * - `worker: false` (`--no-worker`): the job's queue, and a bounded wait for its worker.
 */
export async function withClientAndWorker<T>(opts: InProcessOptions, jobQueue: string, fn: (p: Placement) => Promise<T>): Promise<T> {
  const { file } = loadConfig(opts.config);
  const { client, namespace } = await connectClient();
  const waitMs = opts.workerWaitMs ?? DEFAULT_WORKER_WAIT_MS;
  const placement = (taskQueue: string, ms: number): Placement => ({ client, namespace, taskQueue, picked: (handle) => awaitPickup(client, namespace, handle, taskQueue, ms) });
  let ownWorker = false;
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
    const privateQueue = `backupctl-cli-${randomUUID()}`;
    ownWorker = true;
    const w = await createWorkers({ configFile: file, privateQueue });
    const running = Promise.all(w.workers.map((x) => x.run()));
    try {
      return await fn(placement(privateQueue, waitMs));
    } finally {
      for (const x of w.workers) if (x.getState() === 'RUNNING') x.shutdown();
      await running.catch(() => undefined);
      await w.close();
    }
  } finally {
    await client.connection.close();
    // The SDK's runtime (its log forwarding) ends with its last worker; without one it would keep the process alive.
    if (!ownWorker) await Runtime.instance().shutdown();
  }
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
  return withClientAndWorker(opts, taskQueueOf(config, job), async ({ client, namespace, taskQueue, picked }) => {
    const workflowId = restoreWorkflowId(jobName, new Date());
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
      const r = (await handle.result()) as RestoreResult;
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
  });
}

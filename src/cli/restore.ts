import path from 'node:path';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { getJob, loadConfig, taskQueueOf } from '../config/load.js';
import { RESTORE_WORKFLOW, restoreWorkflowId, type RestoreInput, type RestoreResult } from '../contracts/restore.js';
import { BackupError } from '../errors.js';
import { formatBytes } from '../lib/format.js';
import { parseIntoDatabases } from '../restore/targets.js';
import { connectClient } from '../runtime/temporal.js';
import { createWorkers } from '../runtime/worker.js';
import { EXIT, uiLink } from './output.js';
import { progressMode, progressTicker } from './progress.js';

export interface InProcessOptions {
  config?: string;
  /** false: a worker for the job's task queue already runs on this host (`backupctl worker` or `up`). */
  worker?: boolean;
  json?: boolean;
}

/**
 * Connects, runs an in-process worker for the config's task queues unless told not to (like `up --run`), and calls
 * `fn`. The worker stops when `fn` is done; a workflow left running is finished by the next worker on that queue.
 */
export async function withClientAndWorker<T>(opts: InProcessOptions, fn: (client: Client, namespace: string) => Promise<T>): Promise<T> {
  const { file } = loadConfig(opts.config);
  const { client, namespace } = await connectClient();
  const w = opts.worker === false ? undefined : await createWorkers({ configFile: file });
  const running = w ? Promise.all(w.workers.map((x) => x.run())) : undefined;
  try {
    return await fn(client, namespace);
  } finally {
    if (w) {
      for (const x of w.workers) if (x.getState() === 'RUNNING') x.shutdown();
      await running?.catch(() => undefined);
      await w.close();
    }
    await client.connection.close();
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
  return withClientAndWorker(opts, async (client, namespace) => {
    const workflowId = restoreWorkflowId(jobName, new Date());
    let handle;
    try {
      handle = await client.workflow.start(RESTORE_WORKFLOW, {
        taskQueue: taskQueueOf(config, job), workflowId, args: [input], workflowIdConflictPolicy: 'FAIL',
        staticSummary: `restore ${jobName} into ${input.to}`,
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) throw new BackupError('RESTORE_TARGET_EXISTS', `a restore of ${jobName} started this second already runs (${workflowId}); try again`);
      throw err;
    }
    const link = uiLink(config.temporal.uiUrl, namespace, workflowId);
    if (!opts.json) process.stderr.write(`started ${workflowId}\n${link}\n`);
    const stop = progressTicker(handle, progressMode(opts.json));
    try {
      const r = (await handle.result()) as RestoreResult;
      stop();
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
      stop();
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

import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { deploymentOf, getJob, loadConfig, taskQueueOf } from '../config/load.js';
import type { Config } from '../config/schema.js';
import {
  BACKUP_WORKFLOW, backupWorkflowId, futureSlotProblem, rfc3339Seconds, type BackupInput, type BackupResult,
  type BackupType, type SkippedResult,
} from '../contracts/backup.js';
import { PGBACKREST_WORKFLOW, isPgbackrestResult, type PgbackrestResult } from '../contracts/pgbackrest.js';
import { BackupError } from '../errors.js';
import { formatBytes } from '../lib/format.js';
import { jobRunsQuery } from '../lib/visibility.js';
import { connectClient } from '../runtime/temporal.js';
import { EXIT, uiLink } from './output.js';
import { progressMode, progressTicker } from './progress.js';

export interface RunOptions {
  config?: string;
  type: BackupType;
  slot?: string;
  wait?: boolean;
  json?: boolean;
  client?: Client;
  namespace?: string;
}

/** Starts a backup run; with `wait`, follows it and returns the exit code (0 ok, 1 failed, 3 ok with warnings). */
export async function runCommand(jobName: string, opts: RunOptions): Promise<number> {
  const { config } = loadConfig(opts.config);
  // A pgBackRest job (`kind: pgbackrest`) runs pgbackrestWorkflow with the same input and workflow ID.
  const pgbackrest = config.pgbackrest[jobName];
  const job = pgbackrest ?? getJob(config, jobName);
  if (opts.type !== 'full' && opts.type !== 'diff') throw new BackupError('CONFIG_INVALID', `--type must be full or diff, not "${opts.type}"`);
  const slot = opts.slot ? new Date(opts.slot) : new Date();
  if (Number.isNaN(slot.getTime())) throw new BackupError('CONFIG_INVALID', `--slot "${opts.slot}" is not an ISO time`);
  slot.setUTCMilliseconds(0);
  const future = futureSlotProblem(slot, Date.now());
  if (future) throw new BackupError('CONFIG_INVALID', `--slot: ${future}`, { hint: 'give the slot of a time that has passed (or leave --slot out for now)' });
  const conn = opts.client ? { client: opts.client, namespace: opts.namespace ?? 'default' } : await connectClient();
  const { client, namespace } = conn;
  const workflowId = backupWorkflowId(deploymentOf(config), jobName, opts.type, slot);
  const input: BackupInput = { job: jobName, type: opts.type, slot: rfc3339Seconds(slot) };
  let handle;
  try {
    handle = await client.workflow.start(pgbackrest ? PGBACKREST_WORKFLOW : BACKUP_WORKFLOW, {
      taskQueue: taskQueueOf(config, job), workflowId, args: [input],
      workflowIdConflictPolicy: 'FAIL', workflowIdReusePolicy: 'REJECT_DUPLICATE',
      staticSummary: `backup ${jobName} (${opts.type}) for slot ${input.slot}`,
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new BackupError('DESTINATION_EXISTS', `a run for job ${jobName} (${opts.type}) slot ${input.slot} already exists: ${workflowId}`, { hint: 'each slot runs once; see it in the Web UI' });
    }
    throw err;
  }
  const link = uiLink(config.temporal.uiUrl, namespace, workflowId);
  if (!opts.json) process.stdout.write(`started ${workflowId}\n${link}\n`);
  if (!opts.wait) {
    if (opts.json) process.stdout.write(`${JSON.stringify({ status: 'started', workflowId, runId: handle.firstExecutionRunId, link })}\n`);
    return EXIT.OK;
  }
  const stopProgress = progressTicker(handle, progressMode(opts.json));
  try {
    const result = (await handle.result()) as BackupResult | SkippedResult | PgbackrestResult;
    await stopProgress();
    if (result.status === 'skipped') {
      if (opts.json) process.stdout.write(`${JSON.stringify({ status: 'skipped', workflowId, reason: result.reason, link })}\n`);
      else process.stderr.write(`skipped: ${result.reason}\n`);
      return EXIT.FAILED;
    }
    if (isPgbackrestResult(result)) {
      const f = result.pgbackrest;
      if (opts.json) process.stdout.write(`${JSON.stringify({ status: result.status, workflowId, label: f.label, type: f.type, size: f.size, delta: f.delta, archiveRange: f.archiveRange, warnings: result.warnings, link })}\n`);
      else {
        process.stdout.write(`${result.status === 'succeeded' ? 'succeeded' : 'succeeded with warnings'}: pgBackRest ${f.type} backup ${f.label}, ${formatBytes(f.size)} (${formatBytes(f.delta)} copied), WAL unbroken ${f.archiveRange.from} to ${f.archiveRange.to}\n`);
        for (const w of result.warnings) process.stdout.write(`  warning: ${w}\n`);
      }
      return result.warnings.length > 0 ? EXIT.WARNINGS : EXIT.OK;
    }
    const primary = result.locations[0];
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ status: result.status, workflowId, remotePath: primary?.path, destination: primary?.destination, locations: result.locations, size: result.size, sha256: result.sha256, warnings: result.warnings, link })}\n`);
    } else {
      process.stdout.write(`${result.status === 'succeeded' ? 'succeeded' : 'succeeded with warnings'}: ${formatBytes(result.size)} sha256 ${result.sha256}\n`);
      for (const l of result.locations) process.stdout.write(`  ${l.destination}: ${l.path}\n`);
      for (const w of result.warnings) process.stdout.write(`  warning: ${w}\n`);
    }
    return result.warnings.length > 0 ? EXIT.WARNINGS : EXIT.OK;
  } catch (err) {
    await stopProgress();
    if (!(err instanceof WorkflowFailedError)) throw err;
    const cancelled = err.cause instanceof CancelledFailure;
    const message = cancelled ? 'cancelled' : err.cause?.message ?? err.message;
    if (opts.json) process.stdout.write(`${JSON.stringify({ status: cancelled ? 'cancelled' : 'failed', workflowId, error: message, link })}\n`);
    else process.stderr.write(`${cancelled ? 'cancelled' : 'failed'}: ${message}\n${link}\n`);
    return EXIT.FAILED;
  } finally {
    await stopProgress();
    if (!opts.client) await conn.client.connection.close();
  }
}

/**
 * Requests cancellation of a run, or of every running run of a job: each removes its temporary files and staging,
 * then sends a "cancelled" notification.
 */
export async function cancelCommand(target: string, opts: { wait?: boolean; config?: string }): Promise<number> {
  const { client } = await connectClient();
  try {
    let ids = [target];
    let config: Config | undefined;
    try {
      config = loadConfig(opts.config).config;
    } catch {
      config = undefined;
    }
    const job = config && Object.hasOwn(config.jobs, target) ? config.jobs[target] : undefined;
    if (config && job) {
      ids = [];
      // This config's job: its runs are on its task queue (another config's job of the same name runs on its own).
      const query = `${jobRunsQuery(target, taskQueueOf(config, job))} AND ExecutionStatus="Running" AND WorkflowType="${BACKUP_WORKFLOW}"`;
      for await (const w of client.workflow.list({ query })) ids.push(w.workflowId);
      if (ids.length === 0) {
        process.stdout.write(`no running run of job ${target}\n`);
        return EXIT.OK;
      }
    }
    for (const id of ids) {
      await client.workflow.getHandle(id).cancel();
      process.stdout.write(`cancellation requested for ${id}\n`);
    }
    if (opts.wait) {
      for (const id of ids) {
        await client.workflow.getHandle(id).result().then(() => process.stdout.write(`${id}: had already finished\n`), () => process.stdout.write(`${id}: cancelled; cleanup done\n`));
      }
    }
    return EXIT.OK;
  } finally {
    await client.connection.close();
  }
}

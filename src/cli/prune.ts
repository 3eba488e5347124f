import { randomUUID } from 'node:crypto';
import { getJob, loadConfig, taskQueueOf } from '../config/load.js';
import { PRUNE_WORKFLOW, type PruneReport } from '../contracts/prune.js';
import { awaitPickup } from '../runtime/pollers.js';
import { connectClient } from '../runtime/temporal.js';
import { EXIT } from './output.js';

export function renderPrune(r: PruneReport): string {
  const verb = r.dryRun ? 'would remove' : 'removed';
  const lines = [`prune ${r.job}${r.dryRun ? ' (dry run: nothing is removed)' : ''}`];
  for (const d of r.destinations) {
    lines.push(`  ${d.destination}: ${d.kept.length} kept, ${d.removed.length} ${verb}`);
    for (const k of d.kept) lines.push(`    keep    ${k.path} (${k.reasons.join('; ')})`);
    for (const p of d.removed) lines.push(`    ${r.dryRun ? 'would remove' : 'removed'} ${p}`);
    for (const a of d.leftAlone) lines.push(`    left alone ${a.path}: ${a.reason}`);
    if (d.refused) lines.push(`    REFUSED: ${d.refused}`);
  }
  for (const o of r.orphans) lines.push(`  temporary ${o.destination}:${o.path}: ${o.action === 'removed' ? verb : 'kept'} (${o.reason})`);
  for (const s of r.staging) lines.push(`  staging ${s.path}: ${s.action === 'removed' ? verb : 'kept'} (${s.reason})`);
  for (const p of r.problems) lines.push(`  problem: ${p}`);
  return lines.join('\n');
}

/**
 * `backupctl prune <job> [--dry-run] [--json]`: retention, orphan sweep and stale staging, run as a workflow on the job's
 * task queue (the worker holds the staging). Exit 0 done, 1 refused or with problems.
 */
export async function pruneCommand(jobName: string, opts: { config?: string; dryRun?: boolean; json?: boolean; workerWaitMs?: number }): Promise<number> {
  const { config } = loadConfig(opts.config);
  const job = getJob(config, jobName);
  const taskQueue = taskQueueOf(config, job);
  const { client, namespace } = await connectClient();
  try {
    if (!opts.json) process.stderr.write(`prune ${jobName}: waiting for the worker on task queue ${taskQueue}\n`);
    const handle = await client.workflow.start(PRUNE_WORKFLOW, {
      taskQueue, workflowId: `prune-${jobName}-${randomUUID()}`,
      args: [{ job: jobName, dryRun: opts.dryRun === true }], staticSummary: `prune ${jobName}${opts.dryRun ? ' (dry run)' : ''}`,
    });
    // A worker must pick it up within the bound; otherwise the prune is terminated and NO_WORKER names the queue.
    await awaitPickup(client, namespace, handle, taskQueue, opts.workerWaitMs ?? 60_000);
    const report = await handle.result() as PruneReport;
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderPrune(report)}\n`);
    return report.refused || report.problems.length > 0 ? EXIT.FAILED : EXIT.OK;
  } finally {
    await client.connection.close();
  }
}

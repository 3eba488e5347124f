import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { deploymentOf, getJob, loadConfig, taskQueueOf } from '../config/load.js';
import { DRILL_WORKFLOW, drillWorkflowId, type DrillReport } from '../contracts/drill.js';
import { PGBACKREST_DRILL_WORKFLOW, type PgbackrestDrillReport } from '../contracts/pgbackrest.js';
import { formatBytes } from '../lib/format.js';
import { EXIT, uiLink } from './output.js';
import { progressMode, progressTicker } from './progress.js';
import { withClientAndWorker, type InProcessOptions } from './restore.js';

export function renderDrill(r: DrillReport | PgbackrestDrillReport): string {
  if (r.format === 'backupctl-pgbackrest-drill/1') {
    const lines = [`restore drill of ${r.job} (pgBackRest stanza ${r.stanza}): ${r.ok ? 'PASSED' : 'FAILED'}${r.restoreMs !== undefined ? `, restore time ${(r.restoreMs / 1000).toFixed(1)} s` : ''}`];
    if (r.backup) lines.push(`  backup: ${r.backup.label} (${r.backup.type}), target ${r.backup.target}`);
    for (const c of r.checks) lines.push(`  ok: ${c}`);
    for (const p of r.problems) lines.push(`  problem: ${p}`);
    return lines.join('\n');
  }
  const lines = [`restore drill of ${r.job}: ${r.ok ? 'PASSED' : 'FAILED'}${r.restoreMs !== undefined ? `, restore time ${(r.restoreMs / 1000).toFixed(1)} s` : ''}`];
  if (r.backup) lines.push(`  backup: ${r.backup.type} of slot ${r.backup.slot}, ${r.backup.destination}:${r.backup.path} (${formatBytes(r.backup.size)})`);
  for (const c of r.checks) lines.push(`  ok: ${c}`);
  for (const p of r.problems) lines.push(`  problem: ${p}`);
  return lines.join('\n');
}

/** `backupctl drill <job>`: one restore drill now, followed to its report. Exit 0 passed, 1 failed. */
export async function drillCommand(jobName: string, opts: InProcessOptions): Promise<number> {
  const { config } = loadConfig(opts.config);
  const pgbackrest = config.pgbackrest[jobName];
  const job = pgbackrest ?? getJob(config, jobName);
  return withClientAndWorker(opts, taskQueueOf(config, job), async ({ client, namespace, taskQueue, picked, result }) => {
    const workflowId = drillWorkflowId(deploymentOf(config), jobName, new Date());
    const handle = await client.workflow.start(pgbackrest ? PGBACKREST_DRILL_WORKFLOW : DRILL_WORKFLOW, { taskQueue, workflowId, args: [{ job: jobName }], staticSummary: `restore drill of ${jobName}` });
    const link = uiLink(config.temporal.uiUrl, namespace, workflowId);
    if (!opts.json) process.stderr.write(`started ${workflowId}\n${link}\n`);
    await picked(handle);
    const stop = progressTicker(handle, progressMode(opts.json));
    let report: DrillReport | PgbackrestDrillReport | undefined;
    let error: string | undefined;
    try {
      report = (await result(handle)) as DrillReport | PgbackrestDrillReport;
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      const cause = err.cause;
      if (cause instanceof ApplicationFailure && cause.details?.[0]) report = cause.details[0] as DrillReport;
      error = cause?.message ?? err.message;
    } finally {
      await stop();
    }
    if (opts.json) process.stdout.write(`${JSON.stringify({ ...(report ?? { ok: false, error }), link })}\n`);
    else process.stdout.write(`${report ? renderDrill(report) : `restore drill of ${jobName}: FAILED: ${error}`}\n`);
    return report?.ok ? EXIT.OK : EXIT.FAILED;
  });
}

import type { Client } from '@temporalio/client';
import { loadConfig } from '../config/load.js';
import { connectClient } from '../runtime/temporal.js';
import { desiredSchedules, applySchedules, ownedSchedules } from '../schedules/index.js';
import { EXIT } from './output.js';

async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const { client } = await connectClient();
  try {
    return await fn(client);
  } finally {
    await client.connection.close();
  }
}

/** `backupctl schedules apply`: prints what it changed; a second run changes nothing. */
export async function schedulesApplyCommand(opts: { config?: string; client?: Client; quiet?: boolean }): Promise<number> {
  const { config } = loadConfig(opts.config);
  const run = async (client: Client) => {
    const changes = await applySchedules(client, config);
    for (const c of changes) if (!opts.quiet || c.action !== 'unchanged') process.stdout.write(`${c.action.padEnd(9)} ${c.id}  ${c.description}\n`);
    const changed = changes.filter((c) => c.action !== 'unchanged').length;
    process.stdout.write(`${changed === 0 ? 'no changes' : `${changed} change(s)`}\n`);
  };
  await (opts.client ? run(opts.client) : withClient(run));
  return EXIT.OK;
}

/** `backupctl schedules list`: each schedule, its next runs, its last run and result, paused or not. */
export async function schedulesListCommand(opts: { config?: string; json?: boolean }): Promise<number> {
  const { config } = loadConfig(opts.config);
  return withClient(async (client) => {
    const declared = new Map(desiredSchedules(config).map((d) => [d.id, d]));
    const owned = await ownedSchedules(client, config);
    const ids = [...new Set([...declared.keys(), ...owned.keys()])].sort();
    const rows = [];
    for (const id of ids) {
      const d = await client.schedule.getHandle(id).describe().catch(() => undefined);
      const last = d?.info.recentActions.at(-1);
      let lastResult: string | undefined;
      if (last && 'workflow' in last.action) {
        const w = await client.workflow.getHandle(last.action.workflow.workflowId, last.action.workflow.firstExecutionRunId).describe().catch(() => undefined);
        lastResult = w ? (w.searchAttributes?.BackupOutcome?.[0] as string | undefined) ?? w.status.name.toLowerCase() : undefined;
      }
      rows.push({
        id, declared: declared.has(id), exists: Boolean(d), paused: d?.state.paused ?? false, note: d?.state.note,
        description: declared.get(id)?.description,
        nextRuns: d?.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()) ?? [],
        lastRun: last ? { scheduledAt: last.scheduledAt.toISOString(), workflowId: 'workflow' in last.action ? last.action.workflow.workflowId : undefined, result: lastResult } : undefined,
        skippedOverlap: d?.info.numActionsSkippedOverlap ?? 0,
      });
    }
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return EXIT.OK;
    }
    for (const r of rows) {
      const state = !r.exists ? 'MISSING (run backupctl schedules apply)' : !r.declared ? 'not in the config (apply deletes it)' : r.paused ? `PAUSED${r.note ? `: ${r.note}` : ''}` : 'active';
      process.stdout.write(`${r.id}  ${state}\n`);
      if (r.description) process.stdout.write(`  ${r.description}\n`);
      if (r.nextRuns.length) process.stdout.write(`  next: ${r.nextRuns.join(', ')}\n`);
      if (r.lastRun) process.stdout.write(`  last: ${r.lastRun.scheduledAt} ${r.lastRun.workflowId ?? ''} ${r.lastRun.result ?? ''}\n`);
      if (r.skippedOverlap) process.stdout.write(`  slots skipped because the previous run was still going: ${r.skippedOverlap}\n`);
    }
    return EXIT.OK;
  });
}

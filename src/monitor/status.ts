/**
 * A job's health, as `status` shows it and the freshness check judges it: the newest backup per type on its
 * destinations, its schedules on the Temporal server, its recent runs and its last restore drill.
 */
import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import type { Config, ScheduleDef } from '../config/schema.js';
import type { BackupType } from '../contracts/backup.js';
import { withDestination } from '../destinations/index.js';
import { errorMessage } from '../errors.js';
import { formatBytes } from '../lib/format.js';
import { newestOnDestination, type BackupInfo } from '../repository/catalog.js';
import { lastDrill, type DrillStatus } from '../repository/drill-reports.js';
import { scheduleId, scheduleName } from '../schedules/index.js';
import { taskQueueOf } from '../config/load.js';
import proto from '@temporalio/proto';
import { jobRunsQuery } from '../lib/visibility.js';
import { trustOf } from '../state/keys.js';

export type Health = 'ok' | 'warning' | 'failing' | 'stale';

export interface JobStatus {
  job: string;
  health: Health;
  newest: Partial<Record<BackupType, BackupInfo>>;
  running: { workflowId: string; startTime: string }[];
  schedules: { id: string; name: string; type: BackupType; state: 'active' | 'paused' | 'missing'; note?: string; nextRuns: string[] }[];
  lastRuns: { workflowId: string; status: string; outcome?: string; closeTime?: string }[];
  problems: string[];
  /** The newest restore drill's report, if any drill ran. */
  drill?: DrillStatus;
  /** A pgBackRest job: its stanza's newest backup per type and newest archived WAL segment (src/monitor/pgbackrest.ts). */
  pgbackrest?: PgbackrestStatus;
}

export interface PgbackrestStatus {
  stanza: string;
  backups: { type: BackupType; label: string; stoppedAt: string; ageMs: number; size: number }[];
  wal?: { segment: string; archivedAt?: string; ageMs?: number };
}

export const hours = (ms: number) => `${Math.round(ms / 360_000) / 10} h`;

/** The job's declared schedules on the Temporal server: missing or paused ones are problems. */
export async function scheduleStatus(config: Config, client: Client, jobName: string, defs: readonly ScheduleDef[], problems: string[]): Promise<{ schedules: JobStatus['schedules']; scheduleProblem: boolean }> {
  const schedules: JobStatus['schedules'] = [];
  let scheduleProblem = false;
  for (const [i, def] of defs.entries()) {
    const id = scheduleId(config, jobName, def, i);
    try {
      const d = await client.schedule.getHandle(id).describe();
      const paused = d.state.paused;
      schedules.push({ id, name: scheduleName(def, i), type: def.type, state: paused ? 'paused' : 'active', note: d.state.note, nextRuns: d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()) });
      if (paused && !def.paused) {
        scheduleProblem = true;
        problems.push(`schedule ${id} is paused${d.state.note ? ` (${d.state.note})` : ''}: no ${def.type} backups run`);
      }
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      scheduleProblem = true;
      schedules.push({ id, name: scheduleName(def, i), type: def.type, state: 'missing', nextRuns: [] });
      problems.push(`schedule ${id} is missing on the Temporal server: no ${def.type} backups run (run backupctl schedules apply)`);
    }
  }
  return { schedules, scheduleProblem };
}

/**
 * The job's running and recent runs (by its search attribute, on its task queue: another config's job of the same name
 * runs on its own hosts' queue, and is not this job); `failing` after `failingAfter` failed runs in a row.
 */
export async function runStatus(client: Client, jobName: string, taskQueue: string, failingAfter: number, problems: string[]): Promise<{ running: JobStatus['running']; lastRuns: JobStatus['lastRuns']; failing: boolean }> {
  const scope = jobRunsQuery(jobName, taskQueue);
  const running: JobStatus['running'] = [];
  for await (const w of client.workflow.list({ query: `${scope} AND ExecutionStatus="Running"` })) {
    running.push({ workflowId: w.workflowId, startTime: w.startTime.toISOString() });
  }
  const lastRuns: JobStatus['lastRuns'] = [];
  for await (const w of client.workflow.list({ query: `${scope} AND ExecutionStatus!="Running"` })) {
    const outcome = w.searchAttributes?.BackupOutcome?.[0] as string | undefined;
    lastRuns.push({ workflowId: w.workflowId, status: w.status.name, outcome, closeTime: w.closeTime?.toISOString() });
    if (lastRuns.length >= 10) break;
  }
  lastRuns.sort((a, b) => (b.closeTime ?? '').localeCompare(a.closeTime ?? ''));
  const recent = lastRuns.slice(0, failingAfter);
  const failing = recent.length >= failingAfter && recent.every((r) => r.status === 'FAILED' || r.status === 'TIMED_OUT' || r.status === 'TERMINATED');
  if (failing) problems.push(`the last ${recent.length} runs failed (newest: ${recent[0]!.workflowId})`);
  return { running, lastRuns, failing };
}

/**
 * A queue nobody polls: the job's runs would wait there for ever (a host down, a worker limited to other queues).
 * The server lists the pollers of the last 5 minutes.
 */
export async function queueStatus(client: Client, queue: string, problems: string[]): Promise<void> {
  try {
    const { pollers } = await client.workflowService.describeTaskQueue({
      namespace: client.options.namespace, taskQueue: { name: queue }, taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    });
    if (!pollers || pollers.length === 0) problems.push(`no worker polls task queue "${queue}" (none in the last 5 minutes): this job's runs wait until one does (start \`backupctl worker\` on the host that has its data)`);
  } catch (err) {
    problems.push(`task queue "${queue}" could not be described: ${errorMessage(err).split('\n')[0]}`);
  }
}

/** Everything `status` shows and the freshness check judges, for one job. */
export async function jobStatus(config: Config, client: Client, jobName: string, now = Date.now()): Promise<JobStatus> {
  const job = config.jobs[jobName]!;
  const problems: string[] = [];
  const types: BackupType[] = [...new Set(job.schedules.map((s) => s.type))];
  if (types.length === 0) types.push('full');

  const newest: JobStatus['newest'] = {};
  const trust = trustOf(config);
  for (const name of job.destinations) {
    try {
      const found = await withDestination(config, name, (d) => newestOnDestination(d, jobName, types, trust, now));
      for (const t of types) if (found[t] && (!newest[t] || found[t]!.slot > newest[t]!.slot)) newest[t] = found[t];
    } catch (err) {
      problems.push(`destination "${name}" cannot be read: ${errorMessage(err).split('\n')[0]}`);
    }
  }
  let stale = false;
  for (const t of types) {
    const b = newest[t];
    const limit = job.freshness[t];
    if (!b) {
      stale = true;
      problems.push(`no finalized ${t} backup found on ${job.destinations.join(', ')}`);
    } else if (b.ageMs > limit) {
      stale = true;
      problems.push(`the newest ${t} backup is ${hours(b.ageMs)} old (threshold ${hours(limit)}): ${b.destination}:${b.path}`);
    }
  }

  const { schedules, scheduleProblem } = await scheduleStatus(config, client, jobName, job.schedules, problems);
  await queueStatus(client, taskQueueOf(config, job), problems);
  const { running, lastRuns, failing } = await runStatus(client, jobName, taskQueueOf(config, job), job.failingAfter, problems);

  const drill = await lastDrill(config, jobName, trust, now);
  if (drill && !drill.ok) problems.push(`the last restore drill (${drill.finishedAt}) failed: ${drill.problems[0] ?? 'see its report'}`);

  const health: Health = stale ? 'stale' : failing ? 'failing' : scheduleProblem || problems.length > 0 || lastRuns[0]?.outcome === 'succeeded_with_warnings' ? 'warning' : 'ok';
  return { job: jobName, health, newest, running, schedules, lastRuns, problems, drill };
}

export function renderStatus(s: JobStatus): string {
  const lines = [`${s.job}: ${s.health.toUpperCase()}`];
  for (const [t, b] of Object.entries(s.newest)) lines.push(`  newest ${t}: ${b.slot} (${hours(b.ageMs)} ago), ${formatBytes(b.size)}, ${b.destination}:${b.path}`);
  for (const b of s.pgbackrest?.backups ?? []) lines.push(`  newest ${b.type}: ${b.label} (${hours(b.ageMs)} ago), ${formatBytes(b.size)}, stanza ${s.pgbackrest!.stanza}`);
  if (s.pgbackrest?.wal) lines.push(`  newest archived WAL: ${s.pgbackrest.wal.segment}${s.pgbackrest.wal.ageMs !== undefined ? ` (${hours(s.pgbackrest.wal.ageMs)} ago)` : ''}`);
  for (const r of s.running) lines.push(`  running: ${r.workflowId} since ${r.startTime}`);
  for (const sc of s.schedules) lines.push(`  schedule ${sc.name} (${sc.type}): ${sc.state}${sc.nextRuns[0] ? `, next ${sc.nextRuns[0]}` : ''}`);
  if (s.drill) lines.push(`  last drill: ${s.drill.ok ? 'passed' : 'FAILED'} ${s.drill.finishedAt} (${hours(s.drill.ageMs)} ago)${s.drill.restoreMs !== undefined ? `, restore time ${(s.drill.restoreMs / 1000).toFixed(1)} s` : ''}`);
  if (s.lastRuns[0]) lines.push(`  last run: ${s.lastRuns[0].workflowId} ${s.lastRuns[0].outcome ?? s.lastRuns[0].status.toLowerCase()}`);
  for (const p of s.problems) lines.push(`  problem: ${p}`);
  return lines.join('\n');
}

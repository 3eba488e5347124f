import { createHash } from 'node:crypto';
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleOptions, type ScheduleSpec } from '@temporalio/client';
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { taskQueueOf } from '../config/load.js';
import type { Config, Job, PgbackrestJob, ScheduleDef } from '../config/schema.js';
import { BACKUP_WORKFLOW } from '../contracts/backup.js';
import { DRILL_WORKFLOW } from '../contracts/drill.js';
import { FRESHNESS_WORKFLOW } from '../contracts/freshness.js';
import { PGBACKREST_DRILL_WORKFLOW, PGBACKREST_WORKFLOW } from '../contracts/pgbackrest.js';
import { SEARCH_ATTRIBUTE_NAMES } from '../contracts/search-attributes.js';

/** Memo key that marks a schedule as backupctl's: `apply` never touches schedules without it. */
const OWNER_MEMO = 'managedBy';
const OWNER = 'backupctl';
const HASH_MEMO = 'backupctlDefinition';
/** Schedules belong to the config that made them, named by its default task queue: hosts with their own configs
 * (and queues) never delete each other's schedules. */
const SCOPE_MEMO = 'scope';

export function freshnessScheduleId(config: Config): string {
  return `backupctl-freshness-${config.temporal.taskQueue}`;
}

const BackupJob = defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.job, SearchAttributeType.KEYWORD);
const BackupTypeKey = defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.type, SearchAttributeType.KEYWORD);

/** `backupctl-<job>-drill`: the job's restore drill (jobs with backup schedules, unless `drill.enabled: false`). */
export function drillScheduleId(job: string): string {
  return `backupctl-${job}-drill`;
}

export function scheduleName(def: ScheduleDef, index: number): string {
  return def.name ?? `${def.type}${index === 0 ? '' : `-${index + 1}`}`;
}

/** `backupctl-<job>-<name>`. */
export function scheduleId(job: string, def: ScheduleDef, index: number): string {
  return `backupctl-${job}-${scheduleName(def, index)}`;
}

function spec(def: ScheduleDef): ScheduleSpec {
  if (def.cron) return { cronExpressions: [def.cron], timezone: def.timezone };
  // Temporal's CalendarSpec takes the same numbers, lists and '*'; unset second, minute and hour mean 0, as in cron.
  return { calendars: [def.calendar as never], timezone: def.timezone };
}

/** `cron 0 0 * * *` or `hour 3,11,19 minute 0`: the schedule as the config wrote it, for the lines `up` and `schedules apply` print. */
function whenText(def: ScheduleDef): string {
  if (def.cron) return `cron ${def.cron}`;
  return Object.entries(def.calendar ?? {}).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : String(v)}`).join(' ');
}

export interface DesiredSchedule {
  id: string;
  job?: string;
  description: string;
  options: ScheduleOptions;
  hash: string;
  paused?: boolean;
}

/** The schedules the config declares: one per job schedule, and the freshness check. */
export function desiredSchedules(config: Config): DesiredSchedule[] {
  const out: DesiredSchedule[] = [];
  const add = (id: string, job: string | undefined, description: string, make: (hash: string) => ScheduleOptions, paused?: boolean) => {
    const probe = make('');
    const hash = createHash('sha256').update(JSON.stringify({ spec: probe.spec, action: probe.action, policies: probe.policies })).digest('hex').slice(0, 16);
    out.push({ id, job, description, options: make(hash), hash, paused });
  };
  // backupctl's own jobs run backupWorkflow, pgBackRest jobs pgbackrestWorkflow; the rest is the same.
  const backupJobs: [string, Pick<Job, 'schedules' | 'taskQueue'>, string][] = [
    ...(Object.entries(config.jobs) as [string, Job][]).map(([n, j]) => [n, j, BACKUP_WORKFLOW] as [string, Job, string]),
    ...Object.entries(config.pgbackrest ?? {}).map(([n, j]) => [n, j, PGBACKREST_WORKFLOW] as [string, PgbackrestJob, string]),
  ];
  for (const [jobName, job, workflowType] of backupJobs) {
    job.schedules.forEach((def, i) => {
      const id = scheduleId(jobName, def, i);
      add(id, jobName, `${def.type} backup of ${jobName}, ${whenText(def)} ${def.timezone}`, (hash) => ({
        scheduleId: id,
        spec: spec(def),
        action: {
          type: 'startWorkflow', workflowType, taskQueue: taskQueueOf(config, job),
          // The server appends the slot: backup-<job>-<type>-<RFC 3339 time>, the same ID a manual run of that slot gets.
          workflowId: `backup-${jobName}-${def.type}`,
          args: [{ job: jobName, type: def.type }],
          typedSearchAttributes: [{ key: BackupJob, value: jobName }, { key: BackupTypeKey, value: def.type }],
          memo: { [HASH_MEMO]: hash },
          staticSummary: `scheduled ${def.type} backup of ${jobName}`,
        },
        // A slot whose previous run is still going is skipped (and counted by Temporal as skipped).
        policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour', pauseOnFailure: false },
        memo: { [OWNER_MEMO]: OWNER, [SCOPE_MEMO]: config.temporal.taskQueue, job: jobName },
        state: def.paused ? { paused: true, note: 'paused in the config' } : undefined,
      }), def.paused);
    });
  }
  const drillJobs: [string, Pick<Job, 'schedules' | 'taskQueue'> & { drill: Pick<Job['drill'], 'enabled' | 'cron' | 'timezone'> }, string][] = [
    ...(Object.entries(config.jobs) as [string, Job][]).map(([n, j]) => [n, j, DRILL_WORKFLOW] as [string, Job, string]),
    ...Object.entries(config.pgbackrest ?? {}).map(([n, j]) => [n, j, PGBACKREST_DRILL_WORKFLOW] as [string, PgbackrestJob, string]),
  ];
  for (const [jobName, job, drillWorkflow] of drillJobs) {
    if (!job.drill.enabled || job.schedules.length === 0) continue;
    const id = drillScheduleId(jobName);
    add(id, jobName, `restore drill of ${jobName}, cron ${job.drill.cron} ${job.drill.timezone}`, (hash) => ({
      scheduleId: id,
      spec: { cronExpressions: [job.drill.cron], timezone: job.drill.timezone },
      action: {
        type: 'startWorkflow', workflowType: drillWorkflow, taskQueue: taskQueueOf(config, job),
        // The server appends the time: drill-<job>-<RFC 3339 time>, like `backupctl drill`.
        workflowId: `drill-${jobName}`, args: [{ job: jobName }], memo: { [HASH_MEMO]: hash },
        staticSummary: `scheduled restore drill of ${jobName}`,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour', pauseOnFailure: false },
      memo: { [OWNER_MEMO]: OWNER, [SCOPE_MEMO]: config.temporal.taskQueue, job: jobName },
    }));
  }
  const freshnessId = freshnessScheduleId(config);
  add(freshnessId, undefined, `freshness check every ${config.monitoring.freshnessEvery / 60_000} min`, (hash) => ({
    scheduleId: freshnessId,
    spec: { intervals: [{ every: config.monitoring.freshnessEvery }] },
    action: {
      type: 'startWorkflow', workflowType: FRESHNESS_WORKFLOW, taskQueue: config.temporal.taskQueue,
      workflowId: freshnessId, args: [], memo: { [HASH_MEMO]: hash }, staticSummary: 'backupctl freshness check',
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '10 minutes' },
    memo: { [OWNER_MEMO]: OWNER, [SCOPE_MEMO]: config.temporal.taskQueue },
  }));
  return out;
}

export interface ApplyChange {
  action: 'created' | 'updated' | 'deleted' | 'unchanged';
  id: string;
  description: string;
}

/** The schedule IDs that this config's backupctl owns on the server (marked by its memo and scope). */
export async function ownedSchedules(client: Client, config: Config): Promise<Map<string, { memo?: Record<string, unknown> }>> {
  const owned = new Map<string, { memo?: Record<string, unknown> }>();
  for await (const s of client.schedule.list()) {
    if (s.memo?.[OWNER_MEMO] === OWNER && s.memo?.[SCOPE_MEMO] === config.temporal.taskQueue) owned.set(s.scheduleId, { memo: s.memo });
  }
  return owned;
}

/**
 * Reconciles the server's schedules with the config: creates missing ones, updates changed ones (compared by a hash
 * of their definition), deletes backupctl's schedules the config no longer has. Schedules without backupctl's memo are
 * never touched. Pausing by hand is left alone. Idempotent: a second run reports everything unchanged.
 */
export async function applySchedules(client: Client, config: Config): Promise<ApplyChange[]> {
  const desired = desiredSchedules(config);
  const changes: ApplyChange[] = [];
  // Visibility (list) is eventually consistent: decide on describe(), which is not.
  const listed = await ownedSchedules(client, config);
  for (const d of desired) {
    const handle = client.schedule.getHandle(d.id);
    let current;
    try {
      current = await handle.describe();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
    if (!current) {
      await client.schedule.create(d.options);
      changes.push({ action: 'created', id: d.id, description: d.description });
      continue;
    }
    const currentHash = current.action.type === 'startWorkflow' ? (current.action.memo as Record<string, unknown> | undefined)?.[HASH_MEMO] : undefined;
    if (current.memo?.[OWNER_MEMO] !== OWNER) {
      throw new Error(`schedule ${d.id} exists but was not created by backupctl; rename the job's schedule or delete that schedule`);
    }
    if (currentHash === d.hash) {
      changes.push({ action: 'unchanged', id: d.id, description: d.description });
      continue;
    }
    await handle.update((prev) => ({ ...prev, spec: d.options.spec, action: d.options.action, policies: { ...prev.policies, ...d.options.policies } } as never));
    changes.push({ action: 'updated', id: d.id, description: d.description });
  }
  const wanted = new Set(desired.map((d) => d.id));
  for (const id of listed.keys()) {
    if (wanted.has(id)) continue;
    try {
      await client.schedule.getHandle(id).delete();
      changes.push({ action: 'deleted', id, description: 'no longer in the config' });
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
  }
  return changes;
}

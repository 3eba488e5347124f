import { createHash } from 'node:crypto';
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleOptions, type ScheduleSpec } from '@temporalio/client';
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { deploymentOf, taskQueueOf } from '../config/load.js';
import type { Config, Job, PgbackrestJob, ScheduleDef } from '../config/schema.js';
import { BACKUP_WORKFLOW, backupActionId } from '../contracts/backup.js';
import { DRILL_WORKFLOW, drillActionId } from '../contracts/drill.js';
import { FRESHNESS_WORKFLOW } from '../contracts/freshness.js';
import { PGBACKREST_DRILL_WORKFLOW, PGBACKREST_WORKFLOW } from '../contracts/pgbackrest.js';
import { SEARCH_ATTRIBUTE_NAMES } from '../contracts/search-attributes.js';

/** Memo key that marks a schedule as backupctl's: `apply` never touches schedules without it. */
const OWNER_MEMO = 'managedBy';
const OWNER = 'backupctl';
const HASH_MEMO = 'backupctlDefinition';
/** Schedules belong to the deployment that made them (`temporal.deployment`): configs never touch each other's. */
const DEPLOYMENT_MEMO = 'deployment';
/** Before deployments, schedules were scoped by the config's default task queue (read only, to adopt them). */
const SCOPE_MEMO = 'scope';

/** `backupctl:<deployment>:freshness`. */
export function freshnessScheduleId(config: Config): string {
  return `backupctl:${deploymentOf(config)}:freshness`;
}

const BackupJob = defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.job, SearchAttributeType.KEYWORD);
const BackupTypeKey = defineSearchAttributeKey(SEARCH_ATTRIBUTE_NAMES.type, SearchAttributeType.KEYWORD);

/** `backupctl:<deployment>:<job>:drill`: the job's restore drill (jobs with backup schedules, unless `drill.enabled: false`). */
export function drillScheduleId(config: Config, job: string): string {
  return `backupctl:${deploymentOf(config)}:${job}:drill`;
}

export function scheduleName(def: ScheduleDef, index: number): string {
  return def.name ?? `${def.type}${index === 0 ? '' : `-${index + 1}`}`;
}

/** `backupctl:<deployment>:<job>:<name>` (":" is in no name, so two deployments' IDs never meet). */
export function scheduleId(config: Config, job: string, def: ScheduleDef, index: number): string {
  return `backupctl:${deploymentOf(config)}:${job}:${scheduleName(def, index)}`;
}

/**
 * The ID the same schedule had before deployments (`backupctl-<job>-<name>`, `backupctl-<job>-drill`,
 * `backupctl-freshness-<taskQueue>`): `apply` adopts such a schedule of this config's scope once, then deletes it.
 */
function legacyId(config: Config, kind: { job: string; name: string } | 'freshness'): string {
  return kind === 'freshness' ? `backupctl-freshness-${config.temporal.taskQueue}` : `backupctl-${kind.job}-${kind.name}`;
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
  /** Its ID before deployments, adopted by `apply`. */
  legacyId: string;
  job?: string;
  description: string;
  options: ScheduleOptions;
  hash: string;
  paused?: boolean;
}

/** The schedules the config declares: one per job schedule, and the freshness check. */
export function desiredSchedules(config: Config): DesiredSchedule[] {
  const out: DesiredSchedule[] = [];
  const deployment = deploymentOf(config);
  const add = (id: string, legacy: string, job: string | undefined, description: string, make: (hash: string) => ScheduleOptions, paused?: boolean) => {
    const probe = make('');
    const hash = createHash('sha256').update(JSON.stringify({ spec: probe.spec, action: probe.action, policies: probe.policies })).digest('hex').slice(0, 16);
    out.push({ id, legacyId: legacy, job, description, options: make(hash), hash, paused });
  };
  // backupctl's own jobs run backupWorkflow, pgBackRest jobs pgbackrestWorkflow; the rest is the same.
  const backupJobs: [string, Pick<Job, 'schedules' | 'taskQueue'>, string][] = [
    ...(Object.entries(config.jobs) as [string, Job][]).map(([n, j]) => [n, j, BACKUP_WORKFLOW] as [string, Job, string]),
    ...Object.entries(config.pgbackrest ?? {}).map(([n, j]) => [n, j, PGBACKREST_WORKFLOW] as [string, PgbackrestJob, string]),
  ];
  for (const [jobName, job, workflowType] of backupJobs) {
    job.schedules.forEach((def, i) => {
      const id = scheduleId(config, jobName, def, i);
      add(id, legacyId(config, { job: jobName, name: scheduleName(def, i) }), jobName, `${def.type} backup of ${jobName}, ${whenText(def)} ${def.timezone}`, (hash) => ({
        scheduleId: id,
        spec: spec(def),
        action: {
          type: 'startWorkflow', workflowType, taskQueue: taskQueueOf(config, job),
          // The server appends the slot: backup:<deployment>:<job>:<type>-<RFC 3339 time>, the same ID a manual run of
          // that slot gets (backupWorkflowId).
          workflowId: backupActionId(deployment, jobName, def.type),
          args: [{ job: jobName, type: def.type }],
          typedSearchAttributes: [{ key: BackupJob, value: jobName }, { key: BackupTypeKey, value: def.type }],
          memo: { [HASH_MEMO]: hash },
          staticSummary: `scheduled ${def.type} backup of ${jobName}`,
        },
        // A slot whose previous run is still going is skipped (and counted by Temporal as skipped).
        policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour', pauseOnFailure: false },
        memo: { [OWNER_MEMO]: OWNER, [DEPLOYMENT_MEMO]: deployment, [SCOPE_MEMO]: config.temporal.taskQueue, job: jobName },
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
    const id = drillScheduleId(config, jobName);
    add(id, legacyId(config, { job: jobName, name: 'drill' }), jobName, `restore drill of ${jobName}, cron ${job.drill.cron} ${job.drill.timezone}`, (hash) => ({
      scheduleId: id,
      spec: { cronExpressions: [job.drill.cron], timezone: job.drill.timezone },
      action: {
        type: 'startWorkflow', workflowType: drillWorkflow, taskQueue: taskQueueOf(config, job),
        // The server appends the time: drill:<deployment>:<job>-<RFC 3339 time>, like `backupctl drill` (drillWorkflowId).
        workflowId: drillActionId(deployment, jobName), args: [{ job: jobName }], memo: { [HASH_MEMO]: hash },
        staticSummary: `scheduled restore drill of ${jobName}`,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour', pauseOnFailure: false },
      memo: { [OWNER_MEMO]: OWNER, [DEPLOYMENT_MEMO]: deployment, [SCOPE_MEMO]: config.temporal.taskQueue, job: jobName },
    }));
  }
  const freshnessId = freshnessScheduleId(config);
  add(freshnessId, legacyId(config, 'freshness'), undefined, `freshness check every ${config.monitoring.freshnessEvery / 60_000} min`, (hash) => ({
    scheduleId: freshnessId,
    spec: { intervals: [{ every: config.monitoring.freshnessEvery }] },
    action: {
      type: 'startWorkflow', workflowType: FRESHNESS_WORKFLOW, taskQueue: config.temporal.taskQueue,
      workflowId: freshnessId, args: [], memo: { [HASH_MEMO]: hash }, staticSummary: 'backupctl freshness check',
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '10 minutes' },
    memo: { [OWNER_MEMO]: OWNER, [DEPLOYMENT_MEMO]: deployment, [SCOPE_MEMO]: config.temporal.taskQueue },
  }));
  return out;
}

export interface ApplyChange {
  action: 'created' | 'migrated' | 'updated' | 'deleted' | 'unchanged';
  id: string;
  description: string;
}

/** Whether a schedule's memo marks it as this deployment's (made by backupctl for this `temporal.deployment`). */
function ownedBy(memo: Record<string, unknown> | undefined, config: Config): boolean {
  return memo?.[OWNER_MEMO] === OWNER && memo[DEPLOYMENT_MEMO] === deploymentOf(config);
}

/** A schedule made before deployments by a config of this scope (its default task queue). */
function legacyOf(memo: Record<string, unknown> | undefined, config: Config): boolean {
  return memo?.[OWNER_MEMO] === OWNER && memo[DEPLOYMENT_MEMO] === undefined && memo[SCOPE_MEMO] === config.temporal.taskQueue;
}

/** The schedule IDs that this config's deployment owns on the server (marked by its memo). */
export async function ownedSchedules(client: Client, config: Config): Promise<Map<string, { memo?: Record<string, unknown> }>> {
  const owned = new Map<string, { memo?: Record<string, unknown> }>();
  for await (const s of client.schedule.list()) {
    if (ownedBy(s.memo, config)) owned.set(s.scheduleId, { memo: s.memo });
  }
  return owned;
}

/**
 * Reconciles the server's schedules with the config's deployment: creates missing ones, updates changed ones
 * (compared by a hash of their definition), deletes this deployment's schedules the config no longer has. Schedules
 * of other deployments, and schedules without backupctl's memo, are never touched. A schedule this config made
 * before deployments (same ID scheme without the deployment, same default task queue) is adopted: the new one is
 * created (paused if the old one was paused by hand, with its note) and the old one deleted, so no slot is scheduled
 * twice. Pausing by hand is left alone. Idempotent: a second run reports everything unchanged.
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
      const legacy = await client.schedule.getHandle(d.legacyId).describe().catch((err: unknown) => {
        if (err instanceof ScheduleNotFoundError) return undefined;
        throw err;
      });
      if (legacy && legacyOf(legacy.memo, config)) {
        const state = legacy.state.paused && !d.paused ? { paused: true, note: legacy.state.note } : d.options.state;
        await client.schedule.create({ ...d.options, ...(state ? { state } : {}) });
        await client.schedule.getHandle(d.legacyId).delete().catch((err: unknown) => {
          if (!(err instanceof ScheduleNotFoundError)) throw err;
        });
        changes.push({ action: 'migrated', id: d.id, description: `${d.description} (was ${d.legacyId})` });
        continue;
      }
      await client.schedule.create(d.options);
      changes.push({ action: 'created', id: d.id, description: d.description });
      continue;
    }
    const currentHash = current.action.type === 'startWorkflow' ? (current.action.memo as Record<string, unknown> | undefined)?.[HASH_MEMO] : undefined;
    if (current.memo?.[OWNER_MEMO] !== OWNER) {
      throw new Error(`schedule ${d.id} exists but was not created by backupctl; rename the job's schedule or delete that schedule`);
    }
    if (!ownedBy(current.memo, config)) {
      throw new Error(`schedule ${d.id} belongs to backupctl deployment "${String(current.memo[DEPLOYMENT_MEMO])}", not to this config's "${deploymentOf(config)}"; give this config another temporal.deployment`);
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

/**
 * A job's backup runs as Temporal remembers them (its visibility store and each run's event history, for as long as the
 * namespace keeps closed runs): when each ran, how it ended, the time each step took and the step a failed run failed
 * in. For the metrics (src/monitor/metrics.ts) and the report (src/monitor/report.ts); the backups themselves, and
 * their sizes, come from the manifests on the destinations.
 */
import type { Client } from '@temporalio/client';
import type { BackupType } from '../contracts/backup.js';
import { SEARCH_ATTRIBUTE_NAMES } from '../contracts/search-attributes.js';
import { jobRunsQuery } from '../lib/visibility.js';

export interface RunRecord {
  workflowId: string;
  runId: string;
  type?: BackupType;
  /** Temporal's status: RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT, … */
  status: string;
  /** backupctl's outcome search attribute: succeeded, succeeded_with_warnings, failed, cancelled, skipped. */
  outcome?: string;
  startTime: string;
  closeTime?: string;
  /** Milliseconds per step, summed over its activities (retries included): lock, preflight, dump, archive, … */
  steps: Record<string, number>;
  /** A failed run: the step its failure names, and the failure's message. */
  failedStep?: string;
  error?: string;
}

/** The activity a step is made of, when its name differs from the step's. */
const STEP_OF_ACTIVITY: Record<string, string | null> = { requestLock: 'lock', checkSizes: 'archive', notifiersOf: null, isRunning: null };

/** A run failed (not cancelled, skipped or still running). */
export const isFailedRun = (r: Pick<RunRecord, 'status' | 'outcome'>) => r.outcome === 'failed' || r.status === 'FAILED' || r.status === 'TIMED_OUT' || r.status === 'TERMINATED';

type Ts = { seconds?: unknown; nanos?: number | null } | null | undefined;
const tsMs = (t: Ts) => (t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : undefined);

interface HistoryEvent {
  eventId?: unknown;
  eventTime?: Ts;
  activityTaskScheduledEventAttributes?: { activityType?: { name?: string | null } | null } | null;
  activityTaskCompletedEventAttributes?: { scheduledEventId?: unknown } | null;
  activityTaskFailedEventAttributes?: { scheduledEventId?: unknown } | null;
  activityTaskTimedOutEventAttributes?: { scheduledEventId?: unknown } | null;
  activityTaskCanceledEventAttributes?: { scheduledEventId?: unknown } | null;
  workflowExecutionFailedEventAttributes?: { failure?: { message?: string | null } | null } | null;
}

/** Steps' durations and the failed step, from a closed run's history. */
export function stepsOfHistory(events: HistoryEvent[]): Pick<RunRecord, 'steps' | 'failedStep' | 'error'> {
  const scheduled = new Map<number, { step: string; at: number }>();
  const steps: Record<string, number> = {};
  let error: string | undefined;
  for (const e of events) {
    const at = tsMs(e.eventTime) ?? 0;
    const s = e.activityTaskScheduledEventAttributes;
    if (s) {
      const name = s.activityType?.name ?? '';
      const step = name in STEP_OF_ACTIVITY ? STEP_OF_ACTIVITY[name] : name;
      if (step) scheduled.set(Number(e.eventId), { step, at });
      continue;
    }
    const closed = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes ?? e.activityTaskCanceledEventAttributes;
    if (closed) {
      const start = scheduled.get(Number(closed.scheduledEventId));
      if (start) steps[start.step] = (steps[start.step] ?? 0) + Math.max(0, at - start.at);
      continue;
    }
    const failed = e.workflowExecutionFailedEventAttributes;
    if (failed) error = failed.failure?.message ?? undefined;
  }
  const failedStep = error ? /(?:failed in|cancelled during) the (\w+) step/.exec(error)?.[1] : undefined;
  return { steps, ...(failedStep ? { failedStep } : {}), ...(error !== undefined ? { error } : {}) };
}

/** Closed runs' histories never change: read once per process. */
const closedRuns = new Map<string, Pick<RunRecord, 'steps' | 'failedStep' | 'error'>>();

/** The newest `limit` backup runs of a job on its task queue (newest first), with their steps' durations. */
export async function recentRuns(client: Client, job: string, taskQueue: string, limit = 100): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  for await (const w of client.workflow.list({ query: jobRunsQuery(job, taskQueue) })) {
    const attrs = w.searchAttributes ?? {};
    const type = attrs[SEARCH_ATTRIBUTE_NAMES.type]?.[0] as BackupType | undefined;
    const outcome = attrs[SEARCH_ATTRIBUTE_NAMES.outcome]?.[0] as string | undefined;
    const record: RunRecord = {
      workflowId: w.workflowId, runId: w.runId, status: w.status.name, startTime: w.startTime.toISOString(),
      ...(w.closeTime ? { closeTime: w.closeTime.toISOString() } : {}), ...(type ? { type } : {}), ...(outcome ? { outcome } : {}), steps: {},
    };
    if (w.closeTime) {
      let facts = closedRuns.get(w.runId);
      if (!facts) {
        const history = await client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
        facts = stepsOfHistory((history.events ?? []) as HistoryEvent[]);
        closedRuns.set(w.runId, facts);
      }
      Object.assign(record, facts);
    }
    out.push(record);
    if (out.length >= limit) break;
  }
  return out.sort((a, b) => b.startTime.localeCompare(a.startTime));
}

/** What the notifiers are told: the events of backup runs, monitoring and drills, and who they belong to. */
import type { BackupResult, BackupType, Step } from './backup.js';
import type { DrillReport } from './drill.js';
import type { PgbackrestDrillReport, PgbackrestResult } from './pgbackrest.js';

/** Something a notifier may report. Plain JSON (it is an activity input): names and paths, never secrets. */
export type BackupEvent =
  /** A run began (dead-man's-switch pings: healthchecks `/start`). */
  | { kind: 'start'; job: string; type: BackupType; slot: string; workflowId: string; runId: string }
  /** A backup run succeeded: backupctl's own (BackupResult) or a pgBackRest job's (PgbackrestResult). */
  | { kind: 'success'; result: BackupResult | PgbackrestResult }
  | { kind: 'failure' | 'cancelled'; job: string; type: BackupType; slot: string; workflowId: string; runId: string;
      step: Step; error: string; code: string; attempts: number; finalized: { destination: string; path: string }[];
      durationMs: number;
      /** Temporary files the compensation could not remove yet (destination unreachable); retried for leftoversRetryMs. */
      leftovers?: { destination: string; path: string }[]; leftoversRetryMs?: number }
  /** The run did nothing, on purpose: another run of the job held the job lock too long. */
  | { kind: 'skipped'; job: string; type: BackupType; slot: string; workflowId: string; runId: string; reason: string }
  /** Monitoring found a problem without a run: stale backups, a missing or paused schedule, repeated failures. */
  | { kind: 'alert'; job: string; problems: string[]; checkedAt: string;
      /** Stable per job, problems and day (src/contracts/freshness.ts): a resend is the same message. */
      alertId?: string }
  /** A restore drill finished (failures always notified; successes when the job's drill asks for it). */
  | DrillEvent;

export type DrillEvent = { kind: 'drill'; report: DrillReport | PgbackrestDrillReport; runId: string };

/** The workflow ID (for message IDs and links) an event belongs to, if any. */
export function eventWorkflowId(e: BackupEvent): string | undefined {
  if (e.kind === 'success') return e.result.workflowId;
  if (e.kind === 'alert') return undefined;
  if (e.kind === 'drill') return e.report.workflowId;
  return e.workflowId;
}

export function eventJob(e: BackupEvent): string {
  return e.kind === 'success' ? e.result.job : e.kind === 'drill' ? e.report.job : e.job;
}


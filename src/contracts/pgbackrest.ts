/**
 * The pgBackRest job kind's workflows: names, inputs, what a run learns about its backup, its result, and the drill's
 * report. Plain JSON, no Node built-ins (the workflow bundle imports this).
 */
import type { BackupType } from './backup.js';

export const PGBACKREST_WORKFLOW = 'pgbackrestWorkflow';
export const PGBACKREST_DRILL_WORKFLOW = 'pgbackrestDrillWorkflow';

/** The run's input, as for backupWorkflow: `{"job":"db","type":"diff"}`. */
export interface PgbackrestInput {
  job: string;
  type?: BackupType;
  /** ISO time of the slot (`backupctl run --slot`); default the schedule's time, or the start time. */
  slot?: string;
}

export type PgbackrestStep = 'lock' | 'preflight' | 'backup' | 'verify' | 'notify';

/** What a run verified about the backup it made (from `pgbackrest info`, `verify` and the WAL continuity check). */
export interface PgbackrestFacts {
  stanza: string;
  label: string;
  type: BackupType;
  /** Database size, and what this backup copied (bytes, uncompressed). */
  size: number;
  delta: number;
  /** In the repository (compressed): this backup's share and the whole backup set it needs. */
  repoSize: number;
  repoDelta: number;
  /** WAL this backup needs, and the archive's range the continuity check found unbroken. */
  archiveStart: string;
  archiveStop: string;
  archiveRange: { from: string; to: string; segments: number };
  /** `timestamp.stop` of the backup, ISO. */
  stoppedAt: string;
  /** The database's system identifier: a string (it exceeds 2^53). */
  systemId: string;
  /** What `drill.check` returned on the primary just after the backup (compared by drills), if the job has one. */
  check?: { sql: string; database: string; result: string };
}

export interface PgbackrestResult {
  status: 'succeeded' | 'succeeded_with_warnings';
  kind: 'pgbackrest';
  workflowId: string;
  job: string;
  type: BackupType;
  slot: string;
  warnings: string[];
  durationMs: number;
  pgbackrest: PgbackrestFacts;
}

/** A pgBackRest restore drill's outcome (the workflow's result; failures are notified). */
export interface PgbackrestDrillReport {
  format: 'backupctl-pgbackrest-drill/1';
  job: string;
  stanza: string;
  workflowId: string;
  ok: boolean;
  startedAt: string;
  finishedAt: string;
  /** Measured restore time (RTO): `pgbackrest restore` until the scratch server answered the check. */
  restoreMs?: number;
  /** The backup restored, and the recovery target. */
  backup?: { label: string; type: string; target: 'immediate' | 'latest' };
  checks: string[];
  problems: string[];
}

export function isPgbackrestResult(r: unknown): r is PgbackrestResult {
  return typeof r === 'object' && r !== null && (r as { kind?: unknown }).kind === 'pgbackrest';
}

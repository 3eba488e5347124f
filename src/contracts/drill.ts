/** The restore drill workflow: its name, report and workflow ID, and the scratch databases it loads dumps into. */
import { rfc3339Seconds, type BackupType } from './backup.js';
import { dumpedDatabases, type DatabaseLists, type DbTarget, type RestoreArtifact } from './restore.js';

export const DRILL_WORKFLOW = 'drillWorkflow';

/** A restore drill's outcome, stored as JSON on each destination under `drills/<job>/`. */
export interface DrillReport {
  format: 'backupctl-drill/1';
  job: string;
  workflowId: string;
  ok: boolean;
  startedAt: string;
  finishedAt: string;
  /** Measured restore time (RTO): download, checksums, unpack and database loads. */
  restoreMs?: number;
  backup?: { workflowId: string; type: BackupType; slot: string; path: string; destination: string; size: number };
  checks: string[];
  problems: string[];
}

/** A drill's scratch database for every dumped database: `<prefix>_<n>`. */
export function drillTargets(chain: RestoreArtifact[], prefix: string, lists: DatabaseLists): DbTarget[] {
  let n = 0;
  return dumpedDatabases(chain, lists).flatMap((d) => d.databases.map((database) => ({ source: d.source, type: d.type, database, target: `${prefix}_${++n}` })));
}

/** What a drill schedule's action names its runs, `drill:<deployment>:<job>`: the server appends `-<time>`. */
export function drillActionId(deployment: string, job: string): string {
  return `drill:${deployment}:${job}`;
}

/** A drill's workflow ID, `drill:<deployment>:<job>-<time>`, the same whether a schedule or `backupctl drill` starts it. */
export function drillWorkflowId(deployment: string, job: string, at: Date): string {
  return `${drillActionId(deployment, job)}-${rfc3339Seconds(at)}`;
}

/**
 * What the metrics and the report show of a job, gathered in one place: its finalized backups on each destination
 * (from the signed manifests), its runs (Temporal's visibility and histories, src/monitor/runs.ts), its drills (the
 * signed drill reports) and its health (src/monitor/status.ts). Everything but the runs lies on the destinations, so
 * it is the same after a worker restart.
 */
import type { Client } from '@temporalio/client';
import { taskQueueOf } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { BackupType } from '../contracts/backup.js';
import type { DrillReport } from '../contracts/drill.js';
import { withDestination } from '../destinations/index.js';
import { errorMessage } from '../errors.js';
import { catalogDestination } from '../repository/catalog.js';
import { drillReports } from '../repository/drill-reports.js';
import { trustOf } from '../state/keys.js';
import { recentRuns, type RunRecord } from './runs.js';
import { jobStatus, type Health } from './status.js';

export interface BackupPoint {
  destination: string;
  type: BackupType;
  tier: string;
  slot: string;
  createdAt: string;
  size: number;
  workflowId: string;
  path: string;
}

export interface JobOverview {
  job: string;
  health: Health;
  problems: string[];
  /** The types the job's schedules make (full when it has none), and their freshness thresholds (ms). */
  types: BackupType[];
  freshness: Record<BackupType, number>;
  destinations: string[];
  /** Finalized, signed backups on every destination, oldest first (one entry per destination holding it). */
  backups: BackupPoint[];
  /** Backup runs Temporal still remembers, oldest first. */
  runs: RunRecord[];
  drills: (DrillReport & { destination: string })[];
  /** Destinations that could not be read. */
  unreadable: { destination: string; error: string }[];
  generatedAt: string;
}

export async function jobOverview(config: Config, client: Client, job: string, now = Date.now()): Promise<JobOverview> {
  const j = config.jobs[job]!;
  const trust = trustOf(config);
  const types: BackupType[] = [...new Set(j.schedules.map((s) => s.type))];
  if (types.length === 0) types.push('full');
  const backups: BackupPoint[] = [];
  const unreadable: JobOverview['unreadable'] = [];
  for (const name of j.destinations) {
    try {
      const catalog = await withDestination(config, name, (d) => catalogDestination(d, job, trust));
      for (const b of catalog.backups) {
        backups.push({ destination: name, type: b.type, tier: b.tier, slot: b.slot, createdAt: b.createdAt, size: b.size, workflowId: b.workflowId, path: b.path });
      }
    } catch (err) {
      unreadable.push({ destination: name, error: errorMessage(err).split('\n')[0]! });
    }
  }
  backups.sort((a, b) => a.slot.localeCompare(b.slot) || a.destination.localeCompare(b.destination));
  const [status, runs, drills] = await Promise.all([jobStatus(config, client, job, now), recentRuns(client, job, taskQueueOf(config, j)), drillReports(config, job, trust)]);
  return {
    job, health: status.health, problems: status.problems, types, freshness: { full: j.freshness.full, diff: j.freshness.diff },
    destinations: j.destinations, backups, runs: runs.reverse(), drills, unreadable, generatedAt: new Date(now).toISOString(),
  };
}

/** Every job's overview (or one job's). */
export async function overview(config: Config, client: Client, job?: string, now = Date.now()): Promise<JobOverview[]> {
  const jobs = job ? [job] : Object.keys(config.jobs);
  const out: JobOverview[] = [];
  for (const name of jobs) out.push(await jobOverview(config, client, name, now));
  return out;
}

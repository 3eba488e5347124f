/**
 * Restore drill reports on a destination: `drills/<job>/<YYYYMMDDTHHMMSSZ>.json`, one per drill, signed like a
 * manifest (`<report>.sig`, src/repository/signatures.ts), written by the drill and read back by `status` (the newest
 * signed one of a job: a report whose signature does not verify is not a drill of this deployment).
 */
import type { Config } from '../config/schema.js';
import type { DrillReport } from '../contracts/drill.js';
import { withDestination } from '../destinations/index.js';
import { readSigned, type Trust } from './signatures.js';

/** Where a job's drill reports are stored on each destination. */
export const drillReportDir = (job: string) => `drills/${job}`;

/** `2025-11-04T03:00:00.123Z` → `20251104T030000Z.json`: names sort by time. */
export function drillReportName(finishedAt: string): string {
  return `${finishedAt.replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')}.json`;
}

/** Whether a file name is a drill report's (what `drillReportName` writes). */
export function isDrillReportName(name: string): boolean {
  return /^\d{8}T\d{6}Z\.json$/.test(name);
}

/** The path of a drill's report on a destination. */
export function drillReportPath(report: Pick<DrillReport, 'job' | 'finishedAt'>): string {
  return `${drillReportDir(report.job)}/${drillReportName(report.finishedAt)}`;
}

export interface DrillStatus {
  ok: boolean;
  finishedAt: string;
  ageMs: number;
  restoreMs?: number;
  workflowId: string;
  destination: string;
  problems: string[];
}

/** Drill reports read per destination before giving up on finding a signed one among the newest. */
const MAX_REPORTS_READ = 20;

/**
 * A signed report's bytes as the drill report of `jobName` stored as `file`, or undefined. The signature binds the
 * bytes, not where they lie: a report of another job, or one copied under a newer name (which `status` would read
 * first for good, hiding every later failed drill), is not this file's report. Its fields are checked before use.
 */
export function drillReportOf(bytes: Buffer, jobName: string, file: string): DrillReport | undefined {
  let r: Partial<DrillReport>;
  try {
    r = JSON.parse(bytes.toString()) as Partial<DrillReport>;
  } catch {
    return undefined;
  }
  if (typeof r !== 'object' || r === null || r.job !== jobName || typeof r.workflowId !== 'string' || typeof r.ok !== 'boolean') return undefined;
  if (typeof r.finishedAt !== 'string' || Number.isNaN(Date.parse(r.finishedAt)) || drillReportName(r.finishedAt) !== file) return undefined;
  if (!Array.isArray(r.problems) || !r.problems.every((p) => typeof p === 'string')) return undefined;
  if (r.restoreMs !== undefined && typeof r.restoreMs !== 'number') return undefined;
  return r as DrillReport;
}

/** The newest signed drill report of a job on any of its destinations (`drills/<job>/*.json`), if there is one. */
export async function lastDrill(config: Config, jobName: string, trust: Trust, now = Date.now()): Promise<DrillStatus | undefined> {
  let best: DrillStatus | undefined;
  for (const name of config.jobs[jobName]!.destinations) {
    try {
      await withDestination(config, name, async (d) => {
        const files = ((await d.list(drillReportDir(jobName))) ?? []).filter((e) => e.type === 'file' && isDrillReportName(e.name)).map((e) => e.name).sort();
        for (const file of files.reverse().slice(0, MAX_REPORTS_READ)) {
          const { bytes, verification } = await readSigned(d, `${drillReportDir(jobName)}/${file}`, 'drill-report', trust);
          if (!bytes || !verification.ok) continue;
          const r = drillReportOf(bytes, jobName, file);
          if (!r) continue;
          if (!best || r.finishedAt > best.finishedAt) {
            best = { ok: r.ok, finishedAt: r.finishedAt, ageMs: now - Date.parse(r.finishedAt), restoreMs: r.restoreMs, workflowId: r.workflowId, destination: name, problems: r.problems };
          }
          return;
        }
      });
    } catch {
      // an unreadable destination is reported by the backup checks
    }
  }
  return best;
}

/**
 * A job's signed drill reports on all its destinations (the newest `limit` per destination; a drill's report is
 * written to each destination, so one drill appears once), oldest first: the report's RTO and results over time.
 */
export async function drillReports(config: Config, jobName: string, trust: Trust, limit = 100): Promise<(DrillReport & { destination: string })[]> {
  const byWorkflow = new Map<string, DrillReport & { destination: string }>();
  for (const name of config.jobs[jobName]!.destinations) {
    try {
      await withDestination(config, name, async (d) => {
        const files = ((await d.list(drillReportDir(jobName))) ?? []).filter((e) => e.type === 'file' && isDrillReportName(e.name)).map((e) => e.name).sort();
        for (const file of files.reverse().slice(0, limit)) {
          const { bytes, verification } = await readSigned(d, `${drillReportDir(jobName)}/${file}`, 'drill-report', trust);
          if (!bytes || !verification.ok) continue;
          const r = drillReportOf(bytes, jobName, file);
          if (!r) continue;
          if (!byWorkflow.has(r.workflowId)) byWorkflow.set(r.workflowId, { ...r, destination: name });
        }
      });
    } catch {
      // an unreadable destination is reported by the backup checks
    }
  }
  return [...byWorkflow.values()].sort((a, b) => a.finishedAt.localeCompare(b.finishedAt));
}

import type { Config } from '../config/schema.js';
import { withDestination } from '../destinations/index.js';
import type { DrillReport } from '../shared.js';

export interface DrillStatus {
  ok: boolean;
  finishedAt: string;
  ageMs: number;
  restoreMs?: number;
  workflowId: string;
  destination: string;
  problems: string[];
}

/** The newest drill report of a job on any of its destinations (`drills/<job>/*.json`), if there is one. */
export async function lastDrill(config: Config, jobName: string, now = Date.now()): Promise<DrillStatus | undefined> {
  let best: DrillStatus | undefined;
  for (const name of config.jobs[jobName]!.destinations) {
    try {
      await withDestination(config, name, async (d) => {
        const files = ((await d.list(`drills/${jobName}`)) ?? []).filter((e) => e.type === 'file' && /^\d{8}T\d{6}Z\.json$/.test(e.name)).map((e) => e.name).sort();
        const newest = files.at(-1);
        if (!newest) return;
        const r = JSON.parse((await d.readSmallFile(`drills/${jobName}/${newest}`))!.toString()) as DrillReport;
        if (!best || r.finishedAt > best.finishedAt) {
          best = { ok: r.ok, finishedAt: r.finishedAt, ageMs: now - Date.parse(r.finishedAt), restoreMs: r.restoreMs, workflowId: r.workflowId, destination: name, problems: r.problems };
        }
      });
    } catch {
      // an unreadable destination is reported by the backup checks
    }
  }
  return best;
}

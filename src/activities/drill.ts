import path from 'node:path';
import { log } from '@temporalio/activity';
import { withDestination } from '../destinations/index.js';
import { errorMessage } from '../errors.js';
import type { DrillReport } from '../shared.js';
import { jobContext, runActivity, type ActivityDeps } from './context.js';

/** Where a drill's reports are stored on each destination. */
export const drillReportDir = (job: string) => `drills/${job}`;

/** `2025-11-04T03:00:00.123Z` → `20251104T030000Z.json`: names sort by time. */
export function drillReportName(finishedAt: string): string {
  return `${finishedAt.replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')}.json`;
}

/** What a drill needs from the config: its scratch directory, notifiers and whether successes are notified. */
export function prepareDrill(deps: ActivityDeps) {
  return (input: { job: string; workflowId: string }): Promise<{ to: string; notifiers: string[]; notifyOnSuccess: boolean; notifyTimeoutMs: number }> => runActivity(async () => {
    const { config, job } = jobContext(deps, input.job);
    const base = job.drill.scratchDir ?? path.join(config.stateDir, 'drills');
    return {
      to: path.join(base, input.workflowId.replace(/[^A-Za-z0-9._:-]/g, '_'), 'restore'),
      notifiers: job.notify, notifyOnSuccess: job.drill.notifyOnSuccess, notifyTimeoutMs: config.settings.notifyTimeout,
    };
  });
}

/** Stores the report as JSON on every destination of the job (`drills/<job>/<time>.json`), where `status` reads it. */
export function writeDrillReport(deps: ActivityDeps) {
  return (input: { report: DrillReport }): Promise<{ stored: string[]; problems: string[] }> => runActivity(async () => {
    const { config, job } = jobContext(deps, input.report.job);
    const file = `${drillReportDir(input.report.job)}/${drillReportName(input.report.finishedAt)}`;
    const stored: string[] = [];
    const problems: string[] = [];
    for (const name of job.destinations) {
      try {
        await withDestination(config, name, (d) => d.writeSmallFile(file, Buffer.from(`${JSON.stringify(input.report, null, 2)}\n`)));
        stored.push(`${name}:${file}`);
      } catch (err) {
        problems.push(`destination "${name}": ${errorMessage(err).split('\n')[0]}`);
        log.warn('could not store the drill report', { destination: name, error: errorMessage(err) });
      }
    }
    if (stored.length === 0) throw new Error(`the drill report could not be stored on any destination: ${problems.join('; ')}`);
    return { stored, problems };
  });
}

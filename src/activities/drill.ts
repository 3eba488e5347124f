import { log } from '@temporalio/activity';
import type { DrillReport } from '../contracts/drill.js';
import { withDestination } from '../destinations/index.js';
import { errorMessage } from '../errors.js';
import { drillReportPath } from '../repository/drill-reports.js';
import { drillScratchDir } from '../state/scratch.js';
import { jobContext, runActivity, type ActivityDeps } from './context.js';

/** What a drill needs from the config: its scratch directory, notifiers and whether successes are notified. */
export function prepareDrill(deps: ActivityDeps) {
  return (input: { job: string; workflowId: string }): Promise<{ to: string; notifiers: string[]; notifyOnSuccess: boolean; notifyTimeoutMs: number }> => runActivity(async () => {
    const { config, job } = jobContext(deps, input.job);
    return {
      to: drillScratchDir(config, job, input.workflowId),
      notifiers: job.notify, notifyOnSuccess: job.drill.notifyOnSuccess, notifyTimeoutMs: config.settings.notifyTimeout,
    };
  });
}

/** Stores the report as JSON on every destination of the job (`drills/<job>/<time>.json`), where `status` reads it. */
export function writeDrillReport(deps: ActivityDeps) {
  return (input: { report: DrillReport }): Promise<{ stored: string[]; problems: string[] }> => runActivity(async () => {
    const { config, job } = jobContext(deps, input.report.job);
    const file = drillReportPath(input.report);
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

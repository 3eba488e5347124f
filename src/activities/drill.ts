import { log } from '@temporalio/activity';
import type { DrillReport } from '../contracts/drill.js';
import { withDestination } from '../destinations/index.js';
import { errorMessage } from '../errors.js';
import { drillReportPath } from '../repository/drill-reports.js';
import { writeSigned } from '../repository/signatures.js';
import { loadSigningKey } from '../state/keys.js';
import { drillScratchDir } from '../state/scratch.js';
import { jobContext, runActivity, type ActivityDeps } from './context.js';

/** What a drill needs from the config: its scratch directory, notifiers, whether successes are notified, and its age identity file. */
export function prepareDrill(deps: ActivityDeps) {
  return (input: { job: string; workflowId: string }): Promise<{ to: string; notifiers: string[]; notifyOnSuccess: boolean; notifyTimeoutMs: number; identity?: string }> => runActivity(async () => {
    const { config, job } = jobContext(deps, input.job);
    return {
      to: drillScratchDir(config, job, input.workflowId),
      // The path of the age identity file (`drill.identity`), never the key: age reads it on the worker.
      ...(job.drill.identity ? { identity: job.drill.identity.file } : {}),
      notifiers: job.notify, notifyOnSuccess: job.drill.notifyOnSuccess, notifyTimeoutMs: config.settings.notifyTimeout,
    };
  });
}

/**
 * Stores the report as JSON on every destination of the job (`drills/<job>/<time>.json`), signed with the worker's key
 * (`<time>.json.sig`), where `status` reads it.
 */
export function writeDrillReport(deps: ActivityDeps) {
  return (input: { report: DrillReport }): Promise<{ stored: string[]; problems: string[] }> => runActivity(async () => {
    const { config, job } = jobContext(deps, input.report.job);
    const file = drillReportPath(input.report);
    const stored: string[] = [];
    const problems: string[] = [];
    const key = loadSigningKey(config);
    const bytes = Buffer.from(`${JSON.stringify(input.report, null, 2)}\n`);
    for (const name of job.destinations) {
      try {
        await withDestination(config, name, (d) => writeSigned(d, file, 'drill-report', bytes, key));
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

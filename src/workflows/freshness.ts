import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { FreshnessReport } from '../activities/monitor.js';

const { checkFreshness } = proxyActivities<Activities>({ startToCloseTimeout: '10m', retry: { maximumAttempts: 3, initialInterval: '10s' } });

/** The scheduled freshness check: silence is an alarm. Notifies each job's notifiers of what it finds. */
export async function freshnessWorkflow(): Promise<FreshnessReport> {
  return checkFreshness({ notify: true });
}

import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { PruneInput, PruneReport } from '../contracts/prune.js';

const { prune } = proxyActivities<Activities>({ startToCloseTimeout: '1h', heartbeatTimeout: '2m', retry: { maximumAttempts: 3, initialInterval: '5s' } });

/** `backupctl prune`: retention, orphan sweep and stale staging of one job, on the job's task queue (its worker). */
export async function pruneWorkflow(input: PruneInput): Promise<PruneReport> {
  return prune(input);
}

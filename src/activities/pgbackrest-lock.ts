import { pgbackrestContext, runActivity, type ActivityDeps } from './context.js';
import { askForLock, type LockInfo } from './lock.js';
import { deploymentOf } from '../config/load.js';

/**
 * Asks for the stanza's lock (the job lock workflow, keyed by stanza): a full and a diff of one stanza never run at
 * once, whatever started them, so pgBackRest's own `[050] unable to acquire lock` never happens.
 */
export function requestStanzaLock(deps: ActivityDeps) {
  return (input: { job: string }): Promise<LockInfo> => runActivity(async () => {
    const { config, job } = pgbackrestContext(deps, input.job);
    const id = await askForLock(`pgbackrest-${job.stanza}`, `lock of pgBackRest stanza ${job.stanza}: one backup at a time`, deploymentOf(config));
    return { lockWorkflowId: id, waitMs: job.lockWait, notifiers: job.notify, notifyTimeoutMs: config.settings.notifyTimeout, retries: config.settings.retries, heartbeatTimeoutMs: config.settings.heartbeatTimeout };
  });
}

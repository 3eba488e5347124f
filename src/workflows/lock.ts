import {
  allHandlersFinished, condition, continueAsNew, defineQuery, defineSignal, getExternalWorkflowHandle, log, proxyActivities,
  setHandler, workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { ACQUIRE_SIGNAL, LOCK_GRANTED_SIGNAL, RELEASE_SIGNAL, type LockRequest } from '../contracts/lock.js';

export const acquireSignal = defineSignal<[LockRequest]>(ACQUIRE_SIGNAL);
export const releaseSignal = defineSignal<[LockRequest]>(RELEASE_SIGNAL);
export const lockGrantedSignal = defineSignal<[{ lock: string }]>(LOCK_GRANTED_SIGNAL);
export const lockStateQuery = defineQuery<LockState>('state');

export interface LockState {
  holder?: LockRequest & { since: number };
  queue: LockRequest[];
}

const same = (a: LockRequest) => (b: LockRequest) => a.workflowId === b.workflowId && a.runId === b.runId;

const { isRunning } = proxyActivities<Activities>({ startToCloseTimeout: '1m', retry: { maximumAttempts: 3 } });

/**
 * A per-job mutex: backup runs ask for it with signal-with-start (`acquire`), get `lockGranted` in arrival order,
 * and `release` it when they end, however they end. A holder that can no longer release (terminated, timed out)
 * is noticed within a minute. The lock finishes after ten idle minutes and continues-as-new to keep its history short.
 */
export async function jobLockWorkflow(input: { job: string; state?: LockState }): Promise<void> {
  const queue: LockRequest[] = input.state?.queue ?? [];
  let holder = input.state?.holder;
  setHandler(acquireSignal, (r) => {
    if (!queue.some(same(r)) && !(holder && same(r)(holder))) queue.push(r);
  });
  setHandler(releaseSignal, (r) => {
    if (holder && same(r)(holder)) holder = undefined;
    const i = queue.findIndex(same(r));
    if (i >= 0) queue.splice(i, 1);
  });
  setHandler(lockStateQuery, () => ({ holder, queue }));

  let grants = 0;
  for (;;) {
    if (!holder && queue.length > 0) {
      const next = queue.shift()!;
      try {
        await getExternalWorkflowHandle(next.workflowId, next.runId).signal(lockGrantedSignal, { lock: workflowInfo().workflowId });
        holder = { ...next, since: Date.now() };
        grants++;
        log.info('lock granted', { job: input.job, holder: next.workflowId });
      } catch {
        log.warn('lock requester is gone', { job: input.job, requester: next.workflowId });
      }
      continue;
    }
    if (holder) {
      if (!(await condition(() => holder === undefined, '1 minute'))) {
        const h = holder;
        if (!(await isRunning({ workflowId: h.workflowId, runId: h.runId }).catch(() => true))) {
          log.warn('lock holder ended without releasing; lock released', { job: input.job, holder: h.workflowId });
          if (holder && same(h)(holder)) holder = undefined;
        }
      }
    } else if (!(await condition(() => queue.length > 0, '10 minutes'))) {
      await condition(allHandlersFinished);
      if (queue.length === 0) return;
    }
    if (grants >= 50 || workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof jobLockWorkflow>({ job: input.job, state: { holder, queue } });
    }
  }
}

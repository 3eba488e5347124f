import type { Client, WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import { BackupError } from '../errors.js';

/** A worker polls again at least every ~70 s (long polls); one not seen for longer is gone. */
const LIVE_POLLER_MS = 2 * 60_000;

/** The identities of the workers that polled `taskQueue` for workflow tasks lately (DescribeTaskQueue). */
export async function queuePollers(client: Client, namespace: string, taskQueue: string): Promise<string[]> {
  const r = await client.workflowService.describeTaskQueue({
    namespace, taskQueue: { name: taskQueue, kind: proto.temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  const now = Date.now();
  return (r.pollers ?? []).filter((p) => {
    const t = p.lastAccessTime ? Number(p.lastAccessTime.seconds ?? 0) * 1000 + Math.floor((p.lastAccessTime.nanos ?? 0) / 1e6) : 0;
    return now - t < LIVE_POLLER_MS;
  }).map((p) => p.identity ?? '?');
}

/**
 * Waits until a worker has picked up the workflow's first task, at most `waitMs`. If nobody did, the workflow is
 * terminated (it would otherwise run whenever a worker appears, unattended) and a NO_WORKER error names the queue.
 */
export async function awaitPickup(client: Client, namespace: string, handle: WorkflowHandle, taskQueue: string, waitMs: number): Promise<void> {
  const end = Date.now() + waitMs;
  const started = proto.temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED;
  for (;;) {
    const h = await client.workflowService.getWorkflowExecutionHistory({ namespace, execution: { workflowId: handle.workflowId }, maximumPageSize: 10 });
    const events = h.history?.events ?? [];
    if (events.some((e) => e.eventType === started)) return;
    if (Date.now() >= end) break;
    await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, end - Date.now()))));
  }
  await handle.terminate(`no worker picked it up within ${Math.round(waitMs / 1000)} s`).catch(() => undefined);
  throw new BackupError('NO_WORKER', `no worker serves task queue "${taskQueue}" (namespace ${namespace}): nothing picked up ${handle.workflowId} within ${Math.round(waitMs / 1000)} s, so it was terminated`, {
    hint: `start \`backupctl worker\` on the host that holds the job's data (its --queue or worker.queues must include ${taskQueue})`,
  });
}

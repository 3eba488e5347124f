import { Context, log } from '@temporalio/activity';
import type { BackupEvent } from '../contracts/events.js';
import { deploymentOf, taskQueueOf } from '../config/load.js';
import { createNotifier } from '../notifiers/index.js';
import { renderMessage } from '../notifiers/message.js';
import { anyJobConfig, currentRun, notifiersOfJob, runActivity, type ActivityDeps } from './context.js';

export interface NotifyInput {
  job: string;
  notifier: string;
  event: BackupEvent;
}

/** Sends one event through one notifier. Retried by Temporal; a notifier never changes the backup's outcome. */
export function notify(deps: ActivityDeps) {
  return (input: NotifyInput): Promise<{ sent: boolean; messageId?: string }> => runActivity(async () => {
    const config = anyJobConfig(deps, input.job);
    const notifier = createNotifier(config, input.notifier);
    if (!notifier.wants(input.event)) return { sent: false };
    const job = config.jobs[input.job] ?? config.pgbackrest[input.job];
    const message = renderMessage(input.event, {
      uiUrl: config.temporal.uiUrl, namespace: currentRun().namespace, deployment: deploymentOf(config), ...(job ? { taskQueue: taskQueueOf(config, job) } : {}),
    });
    // Alive while sending (SMTP has its own timeouts): a worker that dies mid-send is noticed within the heartbeat
    // timeout and the message is sent again (with the same ID), instead of after the whole start-to-close timeout.
    const ctx = Context.current();
    const timer = setInterval(() => ctx.heartbeat(), Math.max(500, (ctx.info.heartbeatTimeoutMs ?? 30_000) / 3));
    try {
      ctx.heartbeat();
      await notifier.send(input.event, message);
    } finally {
      clearInterval(timer);
    }
    log.info('notification sent', { notifier: input.notifier, kind: input.event.kind, messageId: message.id });
    return { sent: true, messageId: message.id };
  });
}

/** The notifiers of a job, for failures that happen before the run's plan exists. */
export function notifiersOf(deps: ActivityDeps) {
  return (input: { job: string }): Promise<string[]> => runActivity(async () => notifiersOfJob(anyJobConfig(deps, input.job), input.job));
}

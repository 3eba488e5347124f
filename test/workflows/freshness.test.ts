import { randomUUID } from 'node:crypto';
import { Client, Connection, ScheduleOverlapPolicy } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Activities } from '../../src/activities/index.js';
import type { FreshnessReport } from '../../src/activities/monitor.js';
import { FRESHNESS_WORKFLOW, type BackupEvent } from '../../src/contracts/index.js';
import { workflowBundle } from '../../src/runtime/bundle.js';

// The freshness check's decisions on the dev server, with scripted activities: one job per activity (one job's
// failure stops no other), alert IDs stable across retries, and the backoff state carried from one scheduled check
// to the next by Temporal (the previous result).

let client: Client;
let native: NativeConnection;
beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const address = inject('temporalAddress');
  client = new Client({ connection: await Connection.connect({ address }) });
  native = await NativeConnection.connect({ address });
});
afterAll(async () => {
  await client?.connection.close();
  await native?.close();
});

const status = (job: string, problems: string[]) => ({ job, health: problems.length ? 'stale' : 'ok', newest: {}, running: [], schedules: [], lastRuns: [], problems });

function scripted(opts: { failNotifyOnce?: string } = {}) {
  const sent: { notifier: string; event: BackupEvent; attempt: number }[] = [];
  const checked: string[] = [];
  const activities = {
    freshnessJobs: async () => ({ jobs: [{ job: 'a', notifiers: ['ops'] }, { job: 'broken', notifiers: ['ops'] }, { job: 'c', notifiers: ['ops', 'pager'] }] }),
    checkJobFreshness: async ({ job }: { job: string }) => {
      checked.push(job);
      if (job === 'broken') throw ApplicationFailure.nonRetryable('destination "nas" cannot be listed: permission denied', 'DESTINATION_IO');
      return { status: status(job, job === 'a' ? ['the newest full backup is 27.1 h old (threshold 25 h)'] : ['schedule backupctl-c-full is missing']), orphans: [] };
    },
    notify: async (i: { notifier: string; event: BackupEvent }) => {
      const attempt = Context.current().info.attempt;
      sent.push({ ...i, attempt });
      if (opts.failNotifyOnce && i.event.kind === 'alert' && i.event.job === opts.failNotifyOnce && attempt === 1) throw new Error('SMTP hiccup');
      return { sent: true };
    },
  } as unknown as Activities;
  return { activities, sent, checked };
}

async function withWorker<T>(activities: Activities, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = `fresh-${randomUUID()}`;
  const worker = await Worker.create({ connection: native, taskQueue, activities, workflowBundle: await workflowBundle() });
  return worker.runUntil(fn(taskQueue));
}

describe('freshness workflow', () => {
  it("checks every job although one job's check fails (that failure is alerted); a retried alert keeps its ID", async () => {
    const { activities, sent, checked } = scripted({ failNotifyOnce: 'a' });
    const report = await withWorker(activities, (taskQueue) => client.workflow.execute(FRESHNESS_WORKFLOW, { taskQueue, workflowId: `fresh-${randomUUID()}`, args: [] })) as FreshnessReport;
    expect(checked).toEqual(['a', 'broken', 'c']);
    expect(report.jobs.map((j) => j.job)).toEqual(['a', 'c']);
    expect(report.failed).toEqual([{ job: 'broken', error: expect.stringContaining('permission denied') }]);
    expect(report.notified.sort()).toEqual(['a:ops', 'broken:ops', 'c:ops', 'c:pager']);
    const alerts = sent.map((s) => s.event).filter((e): e is Extract<BackupEvent, { kind: 'alert' }> => e.kind === 'alert');
    const brokenAlert = alerts.find((e) => e.job === 'broken')!;
    expect(brokenAlert.problems).toEqual([expect.stringMatching(/^the freshness check could not check this job: .*permission denied/)]);
    // Job a's alert failed once and was sent again: the same event, the same ID (the message ID derives from it).
    const aSends = sent.filter((s) => s.event.kind === 'alert' && s.event.job === 'a');
    expect(aSends.map((s) => s.attempt)).toEqual([1, 2]);
    expect(aSends[1]!.event).toEqual(aSends[0]!.event);
    expect((aSends[0]!.event as { alertId?: string }).alertId).toMatch(/^alert:a:\d{4}-\d\d-\d\d:the newest full backup is #/);
    expect(Object.keys(report.alerts)).toHaveLength(3);
  });

  it('a scheduled check continues from the previous one: a lasting problem is not alerted again within the hour', async () => {
    const { activities, sent } = scripted();
    await withWorker(activities, async (taskQueue) => {
      const scheduleId = `fresh-schedule-${randomUUID()}`;
      const handle = await client.schedule.create({
        scheduleId, spec: { intervals: [{ every: '1 day' }] },
        action: { type: 'startWorkflow', workflowType: FRESHNESS_WORKFLOW, taskQueue, args: [] },
        policies: { overlap: ScheduleOverlapPolicy.SKIP }, // as src/schedules declares it
      });
      try {
        const results: FreshnessReport[] = [];
        for (let i = 0; i < 2; i++) {
          // SKIP, as a scheduled start: the schedule then watches the run and keeps its result (the default for a
          // trigger, ALLOW_ALL, does not).
          await handle.trigger(ScheduleOverlapPolicy.SKIP);
          // Wait for the triggered run (and its result) to be recorded by the schedule.
          let id: string | undefined;
          for (let t = 0; t < 100 && !id; t++) {
            const actions = (await handle.describe()).info.recentActions;
            id = actions.length > i ? actions[i]!.action.workflow.workflowId : undefined;
            if (!id) await new Promise((r) => setTimeout(r, 200));
          }
          results.push(await client.workflow.getHandle(id!).result() as FreshnessReport);
          // The schedule records the completion (and its result) before it starts the next action.
          for (let t = 0; t < 100; t++) {
            const running = (await handle.describe()).info.runningActions.length;
            if (running === 0) break;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
        expect(results[0]!.notified.length).toBe(4);
        expect(results[1]!.notified).toEqual([]); // the same problems, minutes later
        expect(results[1]!.alerts).toEqual(results[0]!.alerts);
        expect(sent.filter((s) => s.event.kind === 'alert')).toHaveLength(4);
      } finally {
        await handle.delete();
      }
    });
  });
});

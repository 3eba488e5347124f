import { ScheduleOverlapPolicy, type WorkflowHandle } from '@temporalio/client';
import { loadConfig } from '../../src/config/load.js';
import { desiredSchedules } from '../../src/schedules/index.js';
import { waitFor } from '../helpers/util.js';
import type { Env, JobSetup } from './fixture.js';

// What the pgBackRest e2e tests (posix and S3 repositories) share: the `pg` job's schedules on the dev server.

/** A schedule's ID of the `pg` job: it carries the config's deployment (issue 18). */
export const sid = (job: JobSetup, name: string) => `backupctl:${loadConfig(job.configFile).config.temporal.deployment}:pg:${name}`;

/** Deletes every schedule the job's config declares. */
export async function deleteSchedules(env: Env, job: JobSetup): Promise<void> {
  const { config } = loadConfig(job.configFile);
  for (const d of desiredSchedules(config)) await env.client.schedule.getHandle(d.id).delete().catch(() => undefined);
}

/** Triggers a schedule now and returns the run it started. */
export async function trigger(env: Env, scheduleId: string): Promise<WorkflowHandle> {
  const before = (await env.client.schedule.getHandle(scheduleId).describe()).info.recentActions.length;
  await env.client.schedule.getHandle(scheduleId).trigger(ScheduleOverlapPolicy.ALLOW_ALL);
  const started = await waitFor(async () => {
    const d = await env.client.schedule.getHandle(scheduleId).describe();
    return d.info.recentActions.length > before ? d.info.recentActions.at(-1)!.action : undefined;
  }, { timeoutMs: 30_000, description: `${scheduleId} to start a run` });
  return env.client.workflow.getHandle(started.workflow.workflowId, started.workflow.firstExecutionRunId);
}

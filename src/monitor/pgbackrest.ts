/**
 * A pgBackRest job's health for `status` and the freshness check: pgBackRest does not report backups that are too old
 * (pgbackrest#1918), so backupctl reads `pgbackrest info` (the newest backup per type, by `timestamp.stop`) and the
 * archive's newest WAL segment, and judges them against the job's thresholds; schedules and runs as for every job.
 */
import type { Client } from '@temporalio/client';
import type { Config } from '../config/schema.js';
import type { BackupType } from '../contracts/backup.js';
import { errorMessage } from '../errors.js';
import { newestOfType } from '../pgbackrest/info.js';
import { archivedWal, readInfo } from '../pgbackrest/repo.js';
import { hours, jobStatus, queueStatus, runStatus, scheduleStatus, type Health, type JobStatus, type PgbackrestStatus } from './status.js';
import { taskQueueOf } from '../config/load.js';

export async function pgbackrestJobStatus(config: Config, client: Client, jobName: string, now = Date.now()): Promise<JobStatus> {
  const job = config.pgbackrest[jobName]!;
  const problems: string[] = [];
  const types: BackupType[] = [...new Set(job.schedules.map((s) => s.type))];
  if (types.length === 0) types.push('full');
  const pg: PgbackrestStatus = { stanza: job.stanza, backups: [] };
  let stale = false;
  try {
    const info = await readInfo(job);
    for (const t of types) {
      const b = newestOfType(info, t);
      const limit = job.freshness[t];
      if (!b) {
        stale = true;
        problems.push(`no ${t} backup of stanza ${job.stanza} in pgbackrest info`);
        continue;
      }
      const ageMs = now - b.timestamp.stop * 1000;
      pg.backups.push({ type: t, label: b.label, stoppedAt: new Date(b.timestamp.stop * 1000).toISOString(), ageMs, size: b.info.size });
      if (ageMs > limit) {
        stale = true;
        problems.push(`the newest ${t} backup is ${hours(ageMs)} old (threshold ${hours(limit)}): ${b.label} of stanza ${job.stanza}`);
      }
    }
    const wal = await archivedWal(job, info);
    if (!wal.newest) {
      stale = true;
      problems.push(`no archived WAL segment of stanza ${job.stanza}`);
    } else {
      const ageMs = wal.newest.time !== undefined ? now - wal.newest.time * 1000 : undefined;
      pg.wal = { segment: wal.newest.segment, ...(ageMs !== undefined ? { archivedAt: new Date(wal.newest.time! * 1000).toISOString(), ageMs } : {}) };
      if (ageMs !== undefined && ageMs > job.freshness.wal) {
        stale = true;
        problems.push(`the newest archived WAL segment ${wal.newest.segment} is ${hours(ageMs)} old (threshold ${hours(job.freshness.wal)}): is archive_command failing, or archive_timeout unset?`);
      }
    }
  } catch (err) {
    stale = true;
    problems.push(`stanza ${job.stanza} cannot be read: ${errorMessage(err).split('\n')[0]}`);
  }
  const { schedules, scheduleProblem } = await scheduleStatus(config, client, jobName, job.schedules, problems);
  await queueStatus(client, taskQueueOf(config, job), problems);
  const { running, lastRuns, failing } = await runStatus(client, jobName, taskQueueOf(config, job), job.failingAfter, problems);
  const health: Health = stale ? 'stale' : failing ? 'failing' : scheduleProblem || problems.length > 0 || lastRuns[0]?.outcome === 'succeeded_with_warnings' ? 'warning' : 'ok';
  return { job: jobName, health, newest: {}, running, schedules, lastRuns, problems, pgbackrest: pg };
}

/** Either kind of job. */
export function anyJobStatus(config: Config, client: Client, jobName: string, now = Date.now()): Promise<JobStatus> {
  return config.pgbackrest[jobName] ? pgbackrestJobStatus(config, client, jobName, now) : jobStatus(config, client, jobName, now);
}

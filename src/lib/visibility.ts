import { SEARCH_ATTRIBUTE_NAMES } from '../contracts/search-attributes.js';

/** A value inside the double quotes of a Temporal visibility query (`BackupJob="…"`). */
export function escapeQuery(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

/**
 * The visibility query of a job's runs: its search attribute, on its task queue (another config's job of the same name
 * runs on its own hosts' queue, and is not this job). Without a queue, every job of that name.
 */
export function jobRunsQuery(job: string, taskQueue?: string): string {
  return `${SEARCH_ATTRIBUTE_NAMES.job}="${escapeQuery(job)}"${taskQueue !== undefined ? ` AND TaskQueue="${escapeQuery(taskQueue)}"` : ''}`;
}

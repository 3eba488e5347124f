/**
 * Staging: the folder on the worker where a run writes its dumps and artifact (`<stateDir>/staging/<workflow ID>`), and
 * the guard that refuses staging written before the machine restarted. A run's every activity executes on the job's
 * task queue, i.e. on the host that holds this folder.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/schema.js';
import { BackupError } from '../errors.js';
import { safeWorkflowId } from '../repository/names.js';

/** Where all runs' staging folders are (the prune sweeps stale ones). */
export function stagingRoot(config: Config): string {
  return path.join(config.stateDir, 'staging');
}

/** The staging folder of one run, on the worker that holds it, keyed by the workflow ID. */
export function stagingDir(config: Config, workflowId: string): string {
  return path.join(stagingRoot(config), safeWorkflowId(workflowId));
}

export const ARTIFACT_FILE = 'artifact.tar';

let cachedBootId: string | undefined;

/** This machine's boot ID (changes on every boot); 'unknown' where the kernel does not tell. */
export function bootId(): string {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || 'unknown';
    } catch {
      cachedBootId = 'unknown';
    }
  }
  return cachedBootId;
}

/**
 * Staging is not fsynced (the verified remote copy is what must be durable): after a machine restart, staged bytes
 * written before it may be gone. Refuses to go on with staging from another boot; the run fails and notifies, and the
 * next run dumps again.
 */
export function checkStagingBoot(written: string, what: string): void {
  const now = bootId();
  if (written === now || written === 'unknown' || now === 'unknown') return;
  throw new BackupError('STAGING_LOST', `${what} was staged before this worker's machine restarted (boot ${written}, now ${now}); staged bytes may have been lost, so it is not used`, {
    permanent: true, hint: 'run the backup again: it dumps anew',
  });
}

import path from 'node:path';
import type { Config } from '../config/schema.js';
import { safeWorkflowId } from '../repository/names.js';
import { stagingDir } from '../state/staging.js';

/** The downloaded artifact `index` of a restore chain, in the restore run's staging folder on the worker. */
export function fetchedFile(config: Config, workflowId: string, index: number): string {
  return path.join(stagingDir(config, workflowId), `artifact-${index}.tar`);
}

/** The directory a restore unpacks into before it is renamed to the target: beside it, on the same file system. */
export function unpackTempDir(to: string, workflowId: string): string {
  return path.join(path.dirname(to), `.${path.basename(to)}.${safeWorkflowId(workflowId)}.restore-tmp`);
}

import path from 'node:path';
import type { Config } from '../config/schema.js';
import { stagingDir } from '../activities/context.js';

/** The downloaded artifact `index` of a restore chain, in the restore run's staging folder on the worker. */
export function fetchedFile(config: Config, workflowId: string, index: number): string {
  return path.join(stagingDir(config, workflowId), `artifact-${index}.tar`);
}

/** The directory a restore unpacks into before it is renamed to the target: beside it, on the same file system. */
export function unpackTempDir(to: string, workflowId: string): string {
  return path.join(path.dirname(to), `.${path.basename(to)}.${workflowId.replace(/[^A-Za-z0-9._:-]/g, '_')}.restore-tmp`);
}

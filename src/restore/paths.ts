import path from 'node:path';
import type { Config } from '../config/schema.js';
import { insideRoot } from '../lib/paths.js';
import { safeWorkflowId } from '../repository/names.js';
import { stagingDir } from '../state/staging.js';

/** The downloaded artifact `index` of a restore chain, in the restore run's staging folder on the worker. */
export function fetchedFile(config: Config, workflowId: string, index: number): string {
  if (!Number.isSafeInteger(index) || index < 0) throw new Error(`no artifact index ${index}`);
  return insideRoot(stagingDir(config, workflowId), `artifact-${index}.tar`, 'the downloaded artifact');
}

/** The directory a restore unpacks into before it is renamed to the target: beside it, on the same file system. */
export function unpackTempDir(to: string, workflowId: string): string {
  return insideRoot(path.dirname(to), `.${path.basename(to)}.${safeWorkflowId(workflowId)}.restore-tmp`, 'the temporary restore directory');
}

/** The plaintext of component `component` of the downloaded encrypted artifact `index`, in the restore's staging folder. */
export function decryptedFile(config: Config, workflowId: string, index: number, component: number): string {
  if (!Number.isSafeInteger(index) || index < 0 || !Number.isSafeInteger(component) || component < 0) throw new Error(`no component ${index}/${component}`);
  return insideRoot(stagingDir(config, workflowId), `artifact-${index}-${component}.plain`, 'a decrypted component');
}

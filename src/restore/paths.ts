import path from 'node:path';
import type { Config } from '../config/schema.js';
import { insideRoot } from '../lib/paths.js';
import { safeWorkflowId } from '../repository/names.js';
import { stagingDir } from '../state/staging.js';

/**
 * The record, in the restore run's staging folder on the worker, that artifact `index` of the chain is being streamed
 * into the temporary directory (`started`), or was streamed and checked completely (`done`, with the fetch's result).
 * Markers only: no artifact is ever stored there.
 */
export function streamMarker(config: Config, workflowId: string, index: number, state: 'started' | 'done'): string {
  if (!Number.isSafeInteger(index) || index < 0) throw new Error(`no artifact index ${index}`);
  return insideRoot(stagingDir(config, workflowId), `artifact-${index}.${state}`, 'a restore marker');
}

/** The directory a restore unpacks into before it is renamed to the target: beside it, on the same file system. */
export function unpackTempDir(to: string, workflowId: string): string {
  return insideRoot(path.dirname(to), `.${path.basename(to)}.${safeWorkflowId(workflowId)}.restore-tmp`, 'the temporary restore directory');
}

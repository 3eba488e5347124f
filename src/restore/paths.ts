import { createHash } from 'node:crypto';
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

/** The longest file name Linux file systems take (bytes). */
const NAME_MAX = 255;

/**
 * The directory a restore unpacks into before it is renamed to the target: beside it, on the same file system, named
 * `.<target>.<workflow ID>.restore-tmp`; when that is longer than a file name may be (a long target name and a run ID
 * with long deployment and job names), `.<target's first characters>.<hash of both>.restore-tmp`.
 */
export function unpackTempDir(to: string, workflowId: string): string {
  const base = path.basename(to);
  let name = `.${base}.${safeWorkflowId(workflowId)}.restore-tmp`;
  if (Buffer.byteLength(name) > NAME_MAX) {
    const hash = createHash('sha256').update(`${base}\0${workflowId}`).digest('hex').slice(0, 32);
    name = `.${Buffer.from(base).subarray(0, 64).toString('utf8').replace(/\uFFFD+$/, '')}.${hash}.restore-tmp`;
  }
  return insideRoot(path.dirname(to), name, 'the temporary restore directory');
}

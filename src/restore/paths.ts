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

/** Restore layout under the target directory (README, "Restore"). */
export const LAYOUT = {
  /** files source `name`: its tree, with the original absolute paths below it. */
  files: (name: string) => path.join('files', name),
  /** mysql source: one SQL file. */
  mysql: (name: string) => path.join('databases', `${name}.sql`),
  /** postgres source: a directory with globals.sql and `<database>.dump` (custom format). */
  postgres: (name: string) => path.join('databases', name),
  /** command source: its output, decompressed when backupctl compressed it. */
  command: (name: string, member: string) => path.join('commands', member.endsWith('.zst') ? member.slice(0, -4) : member),
} as const;

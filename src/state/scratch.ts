/** Scratch space on the worker: where a restore drill unpacks before it checks and removes the tree. */
import path from 'node:path';
import type { Config, Job } from '../config/schema.js';
import { safeWorkflowId } from '../repository/names.js';

/** A drill's restore directory: `<drill.scratchDir or <stateDir>/drills>/<workflow ID>/restore`. */
export function drillScratchDir(config: Config, job: Job, workflowId: string): string {
  const base = job.drill.scratchDir ?? path.join(config.stateDir, 'drills');
  return path.join(base, safeWorkflowId(workflowId), 'restore');
}

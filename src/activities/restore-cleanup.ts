import { rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { unpackTempDir } from '../restore/paths.js';
import { stagingDir } from '../state/staging.js';
import { jobContext, runActivity, type ActivityDeps } from './context.js';

/**
 * A restore's tidy-up, after success or failure: its staging folder (downloaded artifacts) and any temporary unpack
 * directory. Never the target: that only exists when the restore finished.
 */
export function cleanupRestore(deps: ActivityDeps) {
  return (input: { job: string; workflowId: string; to?: string; removeTarget?: boolean }): Promise<{ removed: string[] }> => runActivity(async () => {
    const { config } = jobContext(deps, input.job);
    const removed = [stagingDir(config, input.workflowId)];
    if (input.to) removed.push(unpackTempDir(input.to, input.workflowId));
    // Only for drills, whose target is their own scratch directory.
    if (input.to && input.removeTarget) removed.push(input.to);
    for (const p of removed) await rm(p, { recursive: true, force: true });
    // A drill's scratch directory is <scratch>/<workflow ID>/restore: its parent is the drill's own too.
    if (input.to && input.removeTarget) await rmdir(path.dirname(input.to)).catch(() => undefined);
    return { removed };
  });
}

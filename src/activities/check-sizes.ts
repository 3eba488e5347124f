import type { BackupType, ComponentResult, RunRef } from '../contracts/backup.js';
import { withDestination } from '../destinations/index.js';
import { BackupError } from '../errors.js';
import { formatBytes } from '../lib/format.js';
import { manifestsNewestFirst } from '../repository/catalog.js';
import { trustOf } from '../state/keys.js';
import { findSourcePlugin } from '../sources/index.js';
import { jobContext, runActivity, type ActivityDeps } from './context.js';

export interface CheckSizesInput extends RunRef {
  type: BackupType;
  tier: string;
  workflowId: string;
  components: (Pick<ComponentResult, 'name' | 'size'> & { type?: string })[];
}

/** Median of byte counts, in integers. */
export function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : Math.floor((v[mid - 1]! + v[mid]!) / 2);
}

/**
 * Whether `size` dropped by more than `dropPercent` against `history`: integer arithmetic on byte counts, so no
 * floating-point formatting can break it (incident 02's awk crash on `2.9e+08`).
 */
export function sizeDrop(size: number, history: number[], dropPercent: number): { dropped: boolean; percent: number; median: number } {
  const m = median(history);
  if (m === 0) return { dropped: false, percent: 0, median: 0 };
  const dropped = size * 100 < m * (100 - dropPercent);
  const percent = size >= m ? 0 : Math.floor(((m - size) * 100) / m);
  return { dropped, percent, median: m };
}

/**
 * Size anomaly detection: each component of this run against the recent runs of the same job, tier and type, read
 * from the manifests on the job's first destination (not from a local history file). Returns warnings, or fails with
 * SIZE_ANOMALY when the job says so.
 */
export function checkSizes(deps: ActivityDeps) {
  return (input: CheckSizesInput): Promise<{ warnings: string[]; history: number }> => runActivity(async () => {
    const { config, job } = jobContext(deps, input);
    const rule = job.sizeAnomaly;
    const primary = job.destinations[0]!;
    const sizes = new Map<string, number[]>();
    let runs = 0;
    const trust = trustOf(config);
    await withDestination(config, primary, async (d) => {
      for await (const { manifest } of manifestsNewestFirst(d, input.tier, input.job, trust)) {
        if (manifest.type !== input.type || manifest.workflowId === input.workflowId) continue;
        runs++;
        for (const c of manifest.components ?? []) sizes.set(c.name, [...(sizes.get(c.name) ?? []), c.size]);
        if (runs >= rule.window) break;
      }
    });
    const warnings: string[] = [];
    for (const c of input.components) {
      // A diff's component of an incremental source (files) holds only what changed: its size says nothing about completeness.
      if (input.type === 'diff' && c.type !== undefined && findSourcePlugin(c.type)?.incremental) continue;
      const history = sizes.get(c.name) ?? [];
      if (history.length < rule.minHistory) continue;
      const drop = sizeDrop(c.size, history, rule.dropPercent);
      if (drop.dropped) {
        warnings.push(`size anomaly: component "${c.name}" is ${drop.percent}% smaller than the median of the last ${history.length} ${input.type} backups (${formatBytes(c.size)} against ${formatBytes(drop.median)}); check that its data is complete`);
      }
    }
    if (warnings.length > 0 && rule.action === 'fail') {
      throw new BackupError('SIZE_ANOMALY', warnings.join('\n'), { hint: 'if the shrink is expected, set sizeAnomaly.action: warn for this job or run it again after checking' });
    }
    return { warnings, history: runs };
  });
}

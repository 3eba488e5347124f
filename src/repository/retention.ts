/**
 * The retention policy, pure: which finalized backups of one destination to keep and which to delete.
 *
 * - A tier with a rule keeps its newest `count` backups (fulls and diffs alike), or those whose slot is younger than
 *   `maxAgeMs`. A tier without a rule keeps everything.
 * - The newest backup (all tiers) is always kept: every listed backup has been verified, so this is the newest
 *   verified one.
 * - A full that a kept diff names as its base is kept (in any tier).
 * - A rule that would keep none of its tier's backups is refused: then nothing at all is deleted. (A tier whose
 *   backups stopped longer ago than its age rule is exactly the case where deleting would be a disaster.)
 *
 * Files without a readable manifest never reach this function: they are reported, never deleted.
 */
export type RetentionRule = { count: number } | { maxAgeMs: number };

export interface RetentionItem {
  /** Unique per destination: the artifact's path. */
  id: string;
  tier: string;
  type: 'full' | 'diff';
  slot: string;
  workflowId: string;
  /** A diff's base full. */
  baseWorkflowId?: string;
}

export interface RetentionPlan<T extends RetentionItem> {
  keep: { item: T; reasons: string[] }[];
  remove: T[];
  /** Set when a rule would delete every backup of its tier; `remove` is then empty. */
  refused?: string;
  /** Kept diffs whose base full is not among the backups (a restore of them is impossible). */
  missingBases: T[];
}

const describeRule = (tier: string, r: RetentionRule) => ('count' in r ? `${tier}: ${r.count}` : `${tier}: ${Math.round(r.maxAgeMs / 3_600_000)} h`);

export function planRetention<T extends RetentionItem>(items: T[], rules: Record<string, RetentionRule>, now: number): RetentionPlan<T> {
  const newestFirst = [...items].sort((a, b) => (a.slot < b.slot ? 1 : a.slot > b.slot ? -1 : a.id < b.id ? 1 : -1));
  const reasons = new Map<T, string[]>();
  const keep = (item: T, why: string) => reasons.set(item, [...(reasons.get(item) ?? []), why]);
  const refusals: string[] = [];
  const tiers = [...new Set(newestFirst.map((i) => i.tier))];
  for (const tier of tiers) {
    const inTier = newestFirst.filter((i) => i.tier === tier);
    const rule = rules[tier];
    if (!rule) {
      for (const i of inTier) keep(i, `tier ${tier} has no retention rule`);
      continue;
    }
    const kept = 'count' in rule
      ? inTier.slice(0, rule.count)
      : inTier.filter((i) => now - Date.parse(i.slot) <= rule.maxAgeMs);
    if (kept.length === 0) {
      refusals.push(`the rule "${describeRule(tier, rule)}" would delete all ${inTier.length} backups of tier ${tier} (the newest is from ${inTier[0]!.slot}); nothing was deleted: check the rule and whether backups still run`);
    }
    for (const i of kept) keep(i, `rule ${describeRule(tier, rule)}`);
  }
  if (newestFirst[0]) keep(newestFirst[0], 'the newest verified backup');
  const missingBases: T[] = [];
  for (const d of newestFirst.filter((i) => i.type === 'diff' && reasons.has(i) && i.baseWorkflowId)) {
    const base = newestFirst.find((i) => i.type === 'full' && i.workflowId === d.baseWorkflowId);
    if (base) keep(base, `base of the kept diff ${d.id}`);
    else missingBases.push(d);
  }
  if (refusals.length > 0) {
    return { keep: newestFirst.map((item) => ({ item, reasons: reasons.get(item) ?? ['retention refused'] })), remove: [], refused: refusals.join('\n'), missingBases };
  }
  return {
    keep: newestFirst.filter((i) => reasons.has(i)).map((item) => ({ item, reasons: reasons.get(item)! })),
    remove: newestFirst.filter((i) => !reasons.has(i)),
    missingBases,
  };
}

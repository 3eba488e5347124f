import { describe, expect, it } from 'vitest';
import { Job } from '../../src/config/schema.js';
import { planRetention, type RetentionItem } from '../../src/repository/retention.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-01-31T12:00:00Z');
const slot = (daysAgo: number) => new Date(NOW - daysAgo * DAY).toISOString().replace('.000', '');
/** `base`: the base full as `<tier>/<daysAgo>` (or a number: that day in the same tier). */
const item = (tier: string, daysAgo: number, type: 'full' | 'diff' = 'full', base?: number | string): RetentionItem => ({
  id: `${tier}/${type}/${daysAgo}`, tier, type, slot: slot(daysAgo), workflowId: `w-${tier}/full/${daysAgo}`.replace('/full/', `/${type}/`),
  ...(base === undefined ? {} : { baseWorkflowId: typeof base === 'number' ? `w-${tier}/full/${base}` : `w-${base.replace('/', '/full/')}` }),
});
const ids = (xs: { id: string }[]) => xs.map((x) => x.id).sort();

describe('retention policy', () => {
  it('a count keeps that many newest backups of its tier; other tiers without a rule keep everything', () => {
    const items = [item('daily', 0), item('daily', 1), item('daily', 2), item('daily', 3), item('manual', 50)];
    const plan = planRetention(items, { daily: { count: 2 } }, NOW);
    expect(ids(plan.remove)).toEqual(['daily/full/2', 'daily/full/3']);
    expect(ids(plan.keep.map((k) => k.item))).toEqual(['daily/full/0', 'daily/full/1', 'manual/full/50']);
    expect(plan.refused).toBeUndefined();
  });

  it('an age keeps the backups whose slot is younger', () => {
    const items = [1, 5, 9, 40].map((d) => item('weekly', d));
    const plan = planRetention(items, { weekly: { maxAgeMs: 10 * DAY } }, NOW);
    expect(ids(plan.remove)).toEqual(['weekly/full/40']);
  });

  it('keeps the full a kept diff depends on, even beyond the count; a full only deleted diffs need goes', () => {
    const items = [item('daily', 0, 'diff', 2), item('daily', 1, 'diff', 2), item('daily', 2), item('daily', 3, 'diff', 4), item('daily', 4)];
    const plan = planRetention(items, { daily: { count: 2 } }, NOW);
    expect(ids(plan.keep.map((k) => k.item))).toEqual(['daily/diff/0', 'daily/diff/1', 'daily/full/2']);
    expect(plan.keep.find((k) => k.item.id === 'daily/full/2')!.reasons).toEqual(['base of the kept diff daily/diff/0', 'base of the kept diff daily/diff/1']);
    expect(ids(plan.remove)).toEqual(['daily/diff/3', 'daily/full/4']);
  });

  it('a diff\'s base in another tier is kept too, and a missing base is reported', () => {
    const items = [item('daily', 0, 'diff', 'weekly/3'), item('weekly', 3), item('weekly', 1), item('weekly', 10), item('daily', 1, 'diff', 'weekly/99')];
    const plan = planRetention(items, { daily: { count: 2 }, weekly: { count: 1 } }, NOW);
    expect(ids(plan.keep.map((k) => k.item))).toEqual(['daily/diff/0', 'daily/diff/1', 'weekly/full/1', 'weekly/full/3']);
    expect(ids(plan.remove)).toEqual(['weekly/full/10']);
    expect(ids(plan.missingBases)).toEqual(['daily/diff/1']);
  });

  it('never deletes the newest backup', () => {
    const items = [item('daily', 0), item('daily', 1)];
    const plan = planRetention(items, { daily: { count: 1 } }, NOW);
    expect(plan.keep.map((k) => k.item.id)).toEqual(['daily/full/0']);
    expect(plan.keep[0]!.reasons).toContain('the newest verified backup');
  });

  it('refuses a rule that would delete every backup of its tier, and then deletes nothing at all', () => {
    const items = [item('daily', 0), item('daily', 1), item('monthly', 40), item('monthly', 70)];
    const plan = planRetention(items, { daily: { count: 1 }, monthly: { maxAgeMs: 30 * DAY } }, NOW);
    expect(plan.refused).toMatch(/would delete all 2 backups of tier monthly/);
    expect(plan.remove).toEqual([]);
    expect(plan.keep).toHaveLength(4);
  });

  it('nothing to do on an empty destination', () => {
    expect(planRetention([], { daily: { count: 3 } }, NOW)).toEqual({ keep: [], remove: [], missingBases: [] });
  });

  it('config: a count or an age per tier; zero is refused', () => {
    const base = { sources: [{ type: 'files', name: 'f', paths: ['/x'] }], destinations: ['nas'] };
    expect(Job.parse({ ...base, retention: { daily: 14, monthly: '365d' } }).retention).toEqual({ daily: { count: 14 }, monthly: { maxAgeMs: 365 * DAY } });
    expect(Job.safeParse({ ...base, retention: { daily: 0 } }).success).toBe(false);
    expect(Job.safeParse({ ...base, retention: { daily: 'forever' } }).success).toBe(false);
  });
});

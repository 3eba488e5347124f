import { describe, expect, it } from 'vitest';
import { median, sizeDrop } from '../../src/activities/check-sizes.js';

describe('size anomaly arithmetic', () => {
  it('medians in integers', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2);
    expect(median([290_000_000, 290_000_001])).toBe(290_000_000);
  });

  it('flags a drop of more than the threshold, not one at or below it', () => {
    const history = [100, 100, 100, 100, 100, 100, 100];
    expect(sizeDrop(20, history, 50)).toEqual({ dropped: true, percent: 80, median: 100 });
    expect(sizeDrop(50, history, 50).dropped).toBe(false);
    expect(sizeDrop(49, history, 50).dropped).toBe(true);
    expect(sizeDrop(150, history, 50)).toEqual({ dropped: false, percent: 0, median: 100 });
  });

  it('handles sizes that awk would print as 2.9e+08, and beyond 2^32', () => {
    const history = [290_000_000, 291_000_000, 289_500_000];
    expect(sizeDrop(58_000_000, history, 50)).toEqual({ dropped: true, percent: 80, median: 290_000_000 });
    const big = [6 * 1024 ** 3, 6 * 1024 ** 3, 6 * 1024 ** 3];
    expect(sizeDrop(1024 ** 3, big, 50).percent).toBe(83);
  });

  it('an empty history median of 0 never flags', () => {
    expect(sizeDrop(0, [0, 0, 0], 50).dropped).toBe(false);
  });
});

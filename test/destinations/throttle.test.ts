import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Throttle } from '../../src/destinations/throttle.js';

describe('Throttle (bandwidthLimit)', () => {
  it('waits so that the bytes stay under the rate, and leaves no abort listener behind on the upload\'s signal', async () => {
    const t = new Throttle(1_000_000);
    const ac = new AbortController();
    const started = Date.now();
    for (let i = 0; i < 20; i++) await t.take(10_000, ac.signal);
    // 200 kB at 1 MB/s: about 200 ms (never less).
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('a cancelled upload stops waiting at once, with the signal\'s reason', async () => {
    const t = new Throttle(1000);
    const ac = new AbortController();
    const waiting = t.take(1_000_000, ac.signal);
    ac.abort(new Error('cancelled'));
    await expect(waiting).rejects.toThrow('cancelled');
  });
});

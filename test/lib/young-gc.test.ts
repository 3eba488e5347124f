import { afterEach, describe, expect, it, vi } from 'vitest';
import { COLLECT_EVERY, collectYoung } from '../../src/lib/young-gc.js';

// collectYoung runs a minor GC after every COLLECT_EVERY bytes (2 MiB) a transfer moved, when Node.js exposes gc
// (--expose-gc), and does nothing when it does not.

describe('collectYoung', () => {
  const saved = globalThis.gc;
  afterEach(() => { globalThis.gc = saved; });

  it('runs one minor GC per 2 MiB moved', () => {
    expect(COLLECT_EVERY).toBe(2 << 20);
    const gc = vi.fn();
    globalThis.gc = gc as unknown as typeof globalThis.gc;
    collectYoung(COLLECT_EVERY); // whatever an earlier test left in the count is flushed here
    gc.mockClear();
    for (let i = 0; i < 32; i++) collectYoung(256 << 10); // 8 MiB in 256 KiB writes
    expect(gc).toHaveBeenCalledTimes(4);
    expect(gc).toHaveBeenCalledWith({ type: 'minor' });
    collectYoung(COLLECT_EVERY - 1);
    expect(gc).toHaveBeenCalledTimes(4);
    collectYoung(1);
    expect(gc).toHaveBeenCalledTimes(5);
  });

  it('does nothing without --expose-gc', () => {
    globalThis.gc = undefined;
    expect(() => { for (let i = 0; i < 40; i++) collectYoung(1 << 20); }).not.toThrow();
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { collectYoung } from '../../src/lib/young-gc.js';

// collectYoung runs a minor GC after every 8 MiB a transfer moved, when Node.js exposes gc (--expose-gc), and does
// nothing when it does not.

describe('collectYoung', () => {
  const saved = globalThis.gc;
  afterEach(() => { globalThis.gc = saved; });

  it('runs one minor GC per 8 MiB moved', () => {
    const gc = vi.fn();
    globalThis.gc = gc as unknown as typeof globalThis.gc;
    collectYoung(8 << 20); // whatever an earlier test left in the count is flushed here
    gc.mockClear();
    for (let i = 0; i < 64; i++) collectYoung(256 << 10); // 16 MiB in 256 KiB writes
    expect(gc).toHaveBeenCalledTimes(2);
    expect(gc).toHaveBeenCalledWith({ type: 'minor' });
    collectYoung((8 << 20) - 1);
    expect(gc).toHaveBeenCalledTimes(2);
    collectYoung(1);
    expect(gc).toHaveBeenCalledTimes(3);
  });

  it('does nothing without --expose-gc', () => {
    globalThis.gc = undefined;
    expect(() => { for (let i = 0; i < 40; i++) collectYoung(1 << 20); }).not.toThrow();
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { StallWatch } from '../../src/lib/stall-watch.js';

/** A watch on a clock the test moves; `check()` is called by hand (the timer's period does not matter here). */
function watch(limitMs: number) {
  let t = 1_000;
  const w = new StallWatch(limitMs, () => new Error('stalled'), () => t);
  watches.push(w);
  return { w, advance: (ms: number) => { t += ms; w.check(); } };
}

const watches: StallWatch[] = [];
afterEach(() => { for (const w of watches.splice(0)) w.stop(); });

describe('StallWatch', () => {
  it('aborts once bytes handed out stay unanswered for the limit', () => {
    const { w, advance } = watch(4_000);
    w.sent(100);
    advance(3_999);
    expect(w.signal.aborted).toBe(false);
    advance(1);
    expect(w.signal.aborted).toBe(true);
    expect((w.signal.reason as Error).message).toBe('stalled');
  });

  it('never aborts while nothing is outstanding, however long the wait (the dump is slow, not the destination)', () => {
    const { w, advance } = watch(4_000);
    advance(60_000);
    w.sent(100);
    w.answered(100);
    advance(60_000);
    expect(w.signal.aborted).toBe(false);
  });

  it('counts from the last answer while writes stay in flight', () => {
    const { w, advance } = watch(4_000);
    w.sent(100);
    w.sent(100);
    advance(3_000);
    w.answered(100);
    advance(3_000);
    expect(w.signal.aborted).toBe(false);
    advance(1_000);
    expect(w.signal.aborted).toBe(true);
  });

  it('counts from the moment bytes were handed out after an idle spell, not from the last answer before it', () => {
    const { w, advance } = watch(4_000);
    w.sent(100);
    w.answered(100);
    advance(10_000);
    w.sent(100);
    advance(3_000);
    expect(w.signal.aborted).toBe(false);
    advance(1_000);
    expect(w.signal.aborted).toBe(true);
  });

  it('ignores an answer that does not move forward', () => {
    const { w, advance } = watch(4_000);
    w.sent(200);
    w.answered(100);
    advance(3_000);
    w.answered(100);
    advance(1_000);
    expect(w.signal.aborted).toBe(true);
  });
});

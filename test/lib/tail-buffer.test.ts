import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TailBuffer } from '../../src/lib/tail-buffer.js';

describe('TailBuffer', () => {
  it('keeps exactly the last `capacity` bytes for any chunking', () => {
    for (let round = 0; round < 200; round++) {
      const capacity = 1 + Math.floor(Math.random() * 64);
      const tail = new TailBuffer(capacity);
      const all: Buffer[] = [];
      const chunks = Math.floor(Math.random() * 20);
      for (let i = 0; i < chunks; i++) {
        const chunk = randomBytes(Math.floor(Math.random() * (capacity * 2 + 2)));
        tail.push(chunk);
        all.push(chunk);
        const whole = Buffer.concat(all);
        expect(tail.contents()).toEqual(whole.subarray(Math.max(0, whole.length - capacity)));
        expect(tail.total).toBe(whole.length);
      }
    }
  });

  it('is empty at first and ignores empty chunks', () => {
    const tail = new TailBuffer(8);
    expect(tail.contents().length).toBe(0);
    tail.push(Buffer.alloc(0));
    tail.push(Buffer.from('abc'));
    tail.push(Buffer.alloc(0));
    expect(tail.toString()).toBe('abc');
  });

  it('wraps around the ring', () => {
    const tail = new TailBuffer(5);
    for (const s of ['abc', 'def', 'gh', 'i']) tail.push(Buffer.from(s));
    expect(tail.toString()).toBe('efghi');
    tail.push(Buffer.from('0123456789'));
    expect(tail.toString()).toBe('56789');
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new TailBuffer(0)).toThrow(RangeError);
    expect(() => new TailBuffer(1.5)).toThrow(RangeError);
  });
});

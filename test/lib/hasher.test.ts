import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ThreadHasher } from '../../src/lib/hasher.js';

const sha = (b: Buffer, enc: 'hex' | 'base64') => createHash('sha256').update(b).digest(enc);

describe('ThreadHasher', () => {
  it('hashes parts on the thread: each part comes back intact with its own SHA-256, and the stream hash covers them all in order', async () => {
    const parts = [randomBytes(3 << 20), randomBytes(1 << 20), randomBytes(12345)];
    const hasher = new ThreadHasher(2);
    const digests: string[] = [];
    for (const p of parts) {
      const own = Buffer.allocUnsafeSlow(p.length);
      p.copy(own);
      const back = await hasher.hashPart(own, own.length);
      expect(back.buf.equals(p)).toBe(true);
      digests.push(back.sha256);
    }
    expect(digests).toEqual(parts.map((p) => sha(p, 'base64')));
    expect(await hasher.digest()).toBe(sha(Buffer.concat(parts), 'hex'));
  });

  it('mixes plain updates and parts in stream order', async () => {
    const a = randomBytes(70_000);
    const b = randomBytes(50_000);
    const hasher = new ThreadHasher(4);
    const ca = hasher.take(a.length);
    a.copy(ca);
    await hasher.update(ca, a.length);
    const cb = Buffer.allocUnsafeSlow(b.length);
    b.copy(cb);
    const part = await hasher.hashPart(cb, b.length);
    expect(part.sha256).toBe(sha(b, 'base64'));
    expect(await hasher.digest()).toBe(sha(Buffer.concat([a, b]), 'hex'));
  });

  it('an update waiting for room fails when the hasher is destroyed, instead of waiting for ever', async () => {
    const h = new ThreadHasher(1);
    // The thread is busy with a large buffer; the next update waits for room.
    await h.update(h.take(64 * 1024 * 1024), 64 * 1024 * 1024).catch(() => undefined);
    const waiting = h.update(h.take(1024), 1024);
    h.destroy();
    await expect(waiting).rejects.toThrow(/stopped/);
  });

  it('refuses a buffer that does not own its memory (it would be transferred away from its other users)', async () => {
    const hasher = new ThreadHasher();
    const pooled = Buffer.from('abc');
    await expect(hasher.hashPart(pooled, pooled.length)).rejects.toThrow(/owns its ArrayBuffer/);
    hasher.destroy();
  });
});

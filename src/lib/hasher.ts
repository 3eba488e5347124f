import { RangeHasher } from './range-hasher.js';

/**
 * SHA-256 on a worker thread, so that hashing does not compete with the event loop that moves the data (an upload
 * is CPU-bound on one core; hashing inline costs about 30 % of its speed). Chunks are transferred, not copied, and
 * come back once hashed: `take()` hands out those buffers again, so a long stream allocates almost nothing.
 * Give `update` a buffer from `take()` (or one that owns its whole ArrayBuffer) and do not touch it afterwards.
 * It is a RangeHasher without ranges: one thread protocol for both.
 */
export class ThreadHasher {
  private readonly inner: RangeHasher;

  constructor(maxPending = 64) {
    this.inner = new RangeHasher([], maxPending);
  }

  /** A buffer of `size` bytes that owns its memory: a recycled one when available. */
  take(size: number): Buffer {
    return this.inner.take(size);
  }

  /** Hashes `buf[0..len)`; resolves when there is room for more (back-pressure). */
  update(buf: Buffer, len: number): Promise<void> {
    return this.inner.update(buf, len);
  }

  async digest(): Promise<string> {
    return (await this.inner.digest()).digest;
  }

  destroy(): void {
    this.inner.destroy();
  }
}

/**
 * Collects small chunks (a child process's pipe reads) into 1 MiB buffers for a ThreadHasher, so the hashing thread
 * gets few, large messages.
 */
export class BatchingHasher {
  private readonly hasher = new ThreadHasher(16);
  private buf: Buffer;
  private used = 0;
  constructor(private readonly batch = 1024 * 1024) {
    this.buf = this.hasher.take(batch);
  }

  async update(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, this.batch - this.used);
      chunk.copy(this.buf, this.used, off, off + n);
      this.used += n;
      off += n;
      if (this.used === this.batch) await this.flush();
    }
  }

  private async flush(): Promise<void> {
    const full = this.buf;
    const len = this.used;
    this.buf = this.hasher.take(this.batch);
    this.used = 0;
    await this.hasher.update(full, len);
  }

  async digest(): Promise<string> {
    if (this.used > 0) await this.flush();
    return this.hasher.digest();
  }

  destroy(): void {
    this.hasher.destroy();
  }
}

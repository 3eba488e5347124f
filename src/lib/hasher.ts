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

  /**
   * `maxPending`: buffers handed to the thread and not yet hashed before `update` waits; it also bounds the buffers
   * kept for reuse. 8 keeps an SFTP upload's (8 × 255 KiB) and a local copy's (8 × 1 MiB) hashing queue small; the
   * queue only smooths the thread's pauses, it does not add speed (64 held up to 16 MiB twice over during a backup's
   * upload, for the same upload time: README, "Memory and start-up").
   */
  constructor(maxPending = 8) {
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

  /** Hashes `buf[0..len)` into the stream and on its own (RangeHasher.hashPart): the buffer comes back with its SHA-256. */
  hashPart(buf: Buffer, len: number): Promise<{ buf: Buffer; sha256: string }> {
    return this.inner.hashPart(buf, len);
  }

  async digest(): Promise<string> {
    return (await this.inner.digest()).digest;
  }

  destroy(): void {
    void this.inner.destroy();
  }
}

import { Worker } from 'node:worker_threads';

/**
 * SHA-256 on a worker thread, so that hashing does not compete with the event loop that moves the data (an upload
 * is CPU-bound on one core; hashing inline costs about 30 % of its speed). Chunks are transferred, not copied, and
 * come back once hashed: `take()` hands out those buffers again, so a long stream allocates almost nothing.
 * Give `update` a buffer from `take()` (or one that owns its whole ArrayBuffer) and do not touch it afterwards.
 */
const WORKER_CODE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const h = createHash('sha256');
parentPort.on('message', (m) => {
  if (m === 'end') { parentPort.postMessage({ digest: h.digest('hex') }); return; }
  h.update(new Uint8Array(m.buf, 0, m.len));
  parentPort.postMessage({ ack: m.buf }, [m.buf]);
});
`;

export class ThreadHasher {
  private readonly worker = new Worker(WORKER_CODE, { eval: true });
  private pending = 0;
  private waiters: (() => void)[] = [];
  private readonly free: ArrayBuffer[] = [];
  private result: Promise<string>;
  private failed: Error | undefined;

  constructor(private readonly maxPending = 64) {
    this.result = new Promise<string>((resolve, reject) => {
      this.worker.on('message', (m: { ack?: ArrayBuffer; digest?: string }) => {
        if (m.ack) {
          this.pending--;
          if (this.free.length < this.maxPending) this.free.push(m.ack);
          const w = this.waiters.shift();
          if (w) w();
        } else if (m.digest) {
          resolve(m.digest);
          void this.worker.terminate();
        }
      });
      this.worker.on('error', (err) => { this.failed = err; reject(err); });
    });
    this.result.catch(() => undefined);
  }

  /** A buffer of `size` bytes that owns its memory: a recycled one when available. */
  take(size: number): Buffer {
    const ab = this.free.pop();
    return ab && ab.byteLength === size ? Buffer.from(ab) : Buffer.allocUnsafeSlow(size);
  }

  /** Hashes `buf[0..len)`; resolves when there is room for more (back-pressure). */
  async update(buf: Buffer, len: number): Promise<void> {
    if (this.failed) throw this.failed;
    if (buf.byteOffset !== 0 || buf.buffer.byteLength !== buf.length) throw new Error('ThreadHasher needs a buffer that owns its ArrayBuffer');
    this.pending++;
    this.worker.postMessage({ buf: buf.buffer, len }, [buf.buffer as ArrayBuffer]);
    if (this.pending >= this.maxPending) await new Promise<void>((r) => this.waiters.push(r));
  }

  digest(): Promise<string> {
    this.worker.postMessage('end');
    return this.result;
  }

  destroy(): void {
    void this.worker.terminate();
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

import { Worker } from 'node:worker_threads';

/**
 * SHA-256 on a worker thread, so that hashing does not compete with the upload's event loop (the upload
 * is CPU-bound on one core; hashing inline costs about 30 % of its speed). Chunks are transferred, not copied:
 * give `update` a buffer that owns its whole ArrayBuffer and do not touch it afterwards.
 */
const WORKER_CODE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const h = createHash('sha256');
parentPort.on('message', (m) => {
  if (m === 'end') { parentPort.postMessage({ digest: h.digest('hex') }); return; }
  h.update(new Uint8Array(m.buf, 0, m.len));
  parentPort.postMessage({ ack: 1 });
});
`;

export class ThreadHasher {
  private readonly worker = new Worker(WORKER_CODE, { eval: true });
  private pending = 0;
  private waiters: (() => void)[] = [];
  private result: Promise<string>;
  private failed: Error | undefined;

  constructor(private readonly maxPending = 64) {
    this.result = new Promise<string>((resolve, reject) => {
      this.worker.on('message', (m: { ack?: number; digest?: string }) => {
        if (m.ack) {
          this.pending--;
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

import { Worker } from 'node:worker_threads';

/**
 * SHA-256 of a whole stream and, in the same pass on a worker thread, of byte ranges of it (the members of an
 * artifact): a download is checked against its manifest's artifact and component hashes without reading it twice.
 * Buffers from `take()` are transferred to the thread and come back once hashed, to be handed out again (ThreadHasher,
 * the plain SHA-256 of a stream, is this without ranges).
 */
const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const ranges = workerData.ranges;
const whole = workerData.whole ? createHash('sha256') : undefined;
const parts = ranges.map(() => createHash('sha256'));
let pos = 0;
parentPort.on('message', (m) => {
  if (m === 'end') {
    parentPort.postMessage({ digest: whole ? whole.digest('hex') : '', parts: parts.map((h) => h.digest('hex')) });
    return;
  }
  const u = new Uint8Array(m.buf, 0, m.len);
  if (whole) whole.update(u);
  const end = pos + m.len;
  for (let i = 0; i < ranges.length; i++) {
    const s = Math.max(ranges[i].start, pos);
    const e = Math.min(ranges[i].end, end);
    if (s < e) parts[i].update(u.subarray(s - pos, e - pos));
  }
  pos = end;
  parentPort.postMessage({ ack: m.buf }, [m.buf]);
});
`;

export interface RangeDigests {
  /** SHA-256 of everything ('' when not asked for). */
  digest: string;
  /** SHA-256 of each range, in the order given. */
  parts: string[];
}

export class RangeHasher {
  private readonly worker: Worker;
  private pending = 0;
  private waiters: (() => void)[] = [];
  private readonly free: ArrayBuffer[] = [];
  private readonly result: Promise<RangeDigests>;
  private failed: Error | undefined;

  /** `ranges`: [start, end) byte offsets in the stream; `whole`: also hash the whole stream. */
  constructor(ranges: { start: number; end: number }[], private readonly maxPending = 64, whole = true) {
    this.worker = new Worker(WORKER_CODE, { eval: true, workerData: { ranges, whole } });
    this.result = new Promise<RangeDigests>((resolve, reject) => {
      this.worker.on('message', (m: { ack?: ArrayBuffer; digest?: string; parts?: string[] }) => {
        if (m.ack) {
          this.pending--;
          if (this.free.length < this.maxPending) this.free.push(m.ack);
          this.waiters.shift()?.();
        } else if (m.parts) {
          resolve({ digest: m.digest ?? '', parts: m.parts });
          void this.worker.terminate();
        }
      });
      this.worker.on('error', (err) => { this.failed = err; reject(err); });
    });
    this.result.catch(() => undefined);
  }

  take(size: number): Buffer {
    const ab = this.free.pop();
    return ab && ab.byteLength === size ? Buffer.from(ab) : Buffer.allocUnsafeSlow(size);
  }

  async update(buf: Buffer, len: number): Promise<void> {
    if (this.failed) throw this.failed;
    if (buf.byteOffset !== 0 || buf.buffer.byteLength !== buf.length) throw new Error('the hashing thread needs a buffer that owns its ArrayBuffer');
    this.pending++;
    this.worker.postMessage({ buf: buf.buffer, len }, [buf.buffer as ArrayBuffer]);
    if (this.pending >= this.maxPending) await new Promise<void>((r) => this.waiters.push(r));
  }

  digest(): Promise<RangeDigests> {
    this.worker.postMessage('end');
    return this.result;
  }

  destroy(): void {
    void this.worker.terminate();
  }
}

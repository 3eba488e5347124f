import { Worker } from 'node:worker_threads';

/**
 * SHA-256 of a whole stream and, in the same pass on a worker thread, of byte ranges of it (the members of an
 * artifact): a download is checked against its manifest's artifact and component hashes without reading it twice.
 * Buffers from `take()` are transferred to the thread and come back once hashed, to be handed out again (ThreadHasher,
 * the plain SHA-256 of a stream, is this without ranges). With a file descriptor, the thread also writes each buffer at
 * its offset in the stream before hashing it: a download is stored and hashed off the event loop, in one pass.
 */
const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { writeSync } = require('node:fs');
const ranges = workerData.ranges;
const fd = workerData.fd;
let failed = false;
const whole = workerData.whole ? createHash('sha256') : undefined;
const parts = ranges.map(() => createHash('sha256'));
let pos = 0;
parentPort.on('message', (m) => {
  if (m === 'end') {
    parentPort.postMessage({ digest: whole ? whole.digest('hex') : '', parts: parts.map((h) => h.digest('hex')) });
    return;
  }
  const u = new Uint8Array(m.buf, 0, m.len);
  if (fd !== undefined && !failed) {
    try {
      let off = 0;
      while (off < m.len) off += writeSync(fd, u, off, m.len - off, pos + off);
    } catch (err) {
      failed = true;
      parentPort.postMessage({ error: { message: err.message, code: err.code } });
    }
  }
  if (whole) whole.update(u);
  const end = pos + m.len;
  for (let i = 0; i < ranges.length; i++) {
    const s = Math.max(ranges[i].start, pos);
    const e = Math.min(ranges[i].end, end);
    if (s < e) parts[i].update(u.subarray(s - pos, e - pos));
  }
  pos = end;
  // A part of its own too (an S3 part's checksum): hashed here, so the caller neither copies nor hashes it on its loop.
  const part = m.part ? createHash('sha256').update(u).digest('base64') : undefined;
  parentPort.postMessage({ ack: m.buf, part }, [m.buf]);
});
`;

/** The hashing thread's young generation, MiB: V8 makes it three semi-spaces (two and the new large-object space). */
export const THREAD_YOUNG_GENERATION_MIB = 6;

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
  /** What to do with each buffer the thread hands back, in the order they were sent (the thread keeps that order). */
  private readonly acks: ((ab: ArrayBuffer, part?: string) => void)[] = [];
  private readonly free: ArrayBuffer[] = [];
  private readonly result: Promise<RangeDigests>;
  private failed: Error | undefined;

  /**
   * `ranges`: [start, end) byte offsets in the stream; `whole`: also hash the whole stream; `fd`: also write the stream
   * to this file (opened for writing; it must stay open until `digest()` or `destroy()` has settled).
   */
  constructor(ranges: { start: number; end: number }[], private readonly maxPending = 64, whole = true, fd?: number) {
    // The thread allocates little (buffers are transferred to it, not copied): a small young generation (2 MiB per
    // semi-space, as `backupctl worker` gives its other threads) instead of V8's up to 16 MiB.
    this.worker = new Worker(WORKER_CODE, { eval: true, workerData: { ranges, whole, fd }, resourceLimits: { maxYoungGenerationSizeMb: THREAD_YOUNG_GENERATION_MIB } });
    this.result = new Promise<RangeDigests>((resolve, reject) => {
      this.worker.on('message', (m: { ack?: ArrayBuffer; part?: string; digest?: string; parts?: string[]; error?: { message: string; code?: string } }) => {
        if (m.error) {
          // A failed write: the stream is not stored, so nothing more is accepted.
          this.failed = Object.assign(new Error(m.error.message), { code: m.error.code });
          reject(this.failed);
          for (const w of this.waiters.splice(0)) w();
        } else if (m.ack) {
          this.pending--;
          this.acks.shift()?.(m.ack, m.part);
          this.waiters.shift()?.();
        } else if (m.parts) {
          resolve({ digest: m.digest ?? '', parts: m.parts });
          void this.worker.terminate();
        }
      });
      this.worker.on('error', (err) => {
        this.failed = err;
        reject(err);
        for (const w of this.waiters.splice(0)) w();
      });
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
    this.acks.push((ab) => { if (this.free.length < this.maxPending) this.free.push(ab); });
    this.worker.postMessage({ buf: buf.buffer, len }, [buf.buffer as ArrayBuffer]);
    if (this.pending >= this.maxPending) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failed) throw this.failed;
  }

  /**
   * Hashes `buf[0..len)` into the stream like `update`, and also on its own: resolves with the buffer back (the same
   * memory, now owned by the caller again) and that part's SHA-256 in base64 (S3's ChecksumSHA256).
   */
  async hashPart(buf: Buffer, len: number): Promise<{ buf: Buffer; sha256: string }> {
    if (this.failed) throw this.failed;
    if (buf.byteOffset !== 0 || buf.buffer.byteLength !== buf.length) throw new Error('the hashing thread needs a buffer that owns its ArrayBuffer');
    const back = new Promise<{ buf: Buffer; sha256: string }>((resolve, reject) => {
      this.acks.push((ab, part) => { if (part === undefined) reject(new Error('the hashing thread returned no part digest')); else resolve({ buf: Buffer.from(ab, 0, len), sha256: part }); });
      this.result.catch(reject);
    });
    this.pending++;
    this.worker.postMessage({ buf: buf.buffer, len, part: true }, [buf.buffer as ArrayBuffer]);
    return back;
  }

  digest(): Promise<RangeDigests> {
    this.worker.postMessage('end');
    return this.result;
  }

  /** Stops the thread; resolves once it can no longer write. An `update` waiting for room fails instead of waiting on. */
  async destroy(): Promise<void> {
    this.failed ??= new Error('the hashing thread was stopped');
    for (const w of this.waiters.splice(0)) w();
    await this.worker.terminate();
  }
}

/**
 * The last `capacity` bytes of a stream that passes through, kept in a fixed ring: a dump's trailer can be checked as
 * the dump streams by, without storing or re-reading the dump.
 */
export class TailBuffer {
  private readonly ring: Buffer;
  private start = 0;
  private length = 0;
  /** Bytes pushed so far. */
  total = 0;

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity <= 0) throw new RangeError(`TailBuffer capacity must be a positive integer, got ${capacity}`);
    this.ring = Buffer.alloc(capacity);
  }

  push(chunk: Uint8Array): void {
    const cap = this.capacity;
    this.total += chunk.length;
    if (chunk.length >= cap) {
      this.ring.set(chunk.subarray(chunk.length - cap));
      this.start = 0;
      this.length = cap;
      return;
    }
    let end = (this.start + this.length) % cap;
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, cap - end);
      this.ring.set(chunk.subarray(off, off + n), end);
      off += n;
      end = (end + n) % cap;
    }
    const grown = this.length + chunk.length;
    if (grown > cap) {
      this.start = end; // the oldest byte kept is the one after the newest
      this.length = cap;
    } else {
      this.length = grown;
    }
  }

  /** A copy of the bytes kept, oldest first. */
  contents(): Buffer {
    const first = Math.min(this.length, this.capacity - this.start);
    const out = Buffer.alloc(this.length);
    this.ring.copy(out, 0, this.start, this.start + first);
    if (first < this.length) this.ring.copy(out, first, 0, this.length - first);
    return out;
  }

  toString(encoding: BufferEncoding = 'utf8'): string {
    return this.contents().toString(encoding);
  }
}

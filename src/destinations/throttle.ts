/** The bandwidth limit, a wrapper around any destination: its uploads wait so that they stay under the rate. */
import type { DestinationSession, PieceSource, StagedWrite, UploadOptions } from './types.js';

/** A token bucket: `take(n)` waits until n more bytes fit under the rate. */
export class Throttle {
  private start = Date.now();
  private sent = 0;
  constructor(private readonly bytesPerSecond: number) {}
  async take(n: number, signal?: AbortSignal): Promise<void> {
    this.sent += n;
    const due = this.start + (this.sent / this.bytesPerSecond) * 1000;
    const wait = due - Date.now();
    if (wait > 0) {
      // The listener goes when the wait ends: an upload takes thousands of times from one activity's signal.
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => { clearTimeout(t); reject(signal!.reason as Error); };
        const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, wait);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
  }
}

/** `s` with every upload (`stage`, `stageFollowing`) limited to `bytesPerSecond` (each upload has a bucket of its own). */
export function throttled(s: DestinationSession, bytesPerSecond: number): DestinationSession {
  const limited = (opts: UploadOptions = {}): UploadOptions => {
    const t = new Throttle(bytesPerSecond);
    return { ...opts, throttle: (n, signal) => t.take(n, signal) };
  };
  return new Proxy(s, {
    get(target, key) {
      if (key === 'stage') return (file: string, w: StagedWrite, opts?: UploadOptions) => target.stage(file, w, limited(opts));
      if (key === 'stageFollowing' && target.stageFollowing) {
        const stageFollowing = target.stageFollowing.bind(target);
        return (source: PieceSource, w: StagedWrite, opts?: UploadOptions) => stageFollowing(source, w, limited(opts));
      }
      const v: unknown = Reflect.get(target, key, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

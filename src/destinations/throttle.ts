/** The bandwidth limit, a wrapper around any destination: its uploads wait so that they stay under the rate. */
import type { DestinationSession } from './types.js';

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
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, wait);
        signal?.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason as Error); }, { once: true });
      });
    }
  }
}

/** `s` with every upload (`stage`) limited to `bytesPerSecond` (each upload has a bucket of its own). */
export function throttled(s: DestinationSession, bytesPerSecond: number): DestinationSession {
  return new Proxy(s, {
    get(target, key) {
      if (key === 'stage') {
        return (file: string, w: Parameters<DestinationSession['stage']>[1], opts: Parameters<DestinationSession['stage']>[2] = {}) => {
          const t = new Throttle(bytesPerSecond);
          return target.stage(file, w, { ...opts, throttle: (n, signal) => t.take(n, signal) });
        };
      }
      const v: unknown = Reflect.get(target, key, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

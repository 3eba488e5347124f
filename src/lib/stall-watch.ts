/**
 * Notices a destination that stopped answering: bytes handed to it that it has not acknowledged, and no
 * acknowledgement for `limitMs`. A connection can stall that way (alive for TCP and SSH keepalives, answering nothing).
 *
 * An upload whose steps wait for nothing else is caught by Temporal's heartbeat timeout: it heartbeats only on
 * acknowledgements. The upload that follows the dump also heartbeats while it waits for the dump's next bytes, so a
 * stall would go unnoticed while the run's other steps (the size check, on the same connection) hang on it too; this
 * watch aborts `signal` instead, after `limitMs` (the upload sets 1.5 heartbeat timeouts).
 */
export class StallWatch {
  private handed = 0;
  private acked = 0;
  /** When the oldest unanswered bytes were handed out, or the last answer came, whichever is later. */
  private since: number;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly limitMs: number, private readonly stalled: () => Error, private readonly now: () => number = Date.now) {
    this.since = now();
    this.timer = setInterval(() => { this.check(); }, Math.max(50, Math.min(1000, limitMs / 4)));
    this.timer.unref();
  }

  /** Aborted with `stalled()` once the destination has left bytes unanswered for `limitMs`. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** `bytes` more were handed to the destination. */
  sent(bytes: number): void {
    if (this.handed === this.acked) this.since = this.now();
    this.handed += bytes;
  }

  /** The destination has acknowledged `total` bytes so far (counted as `sent` counts them). */
  answered(total: number): void {
    if (total <= this.acked) return;
    this.acked = total;
    this.since = this.now();
  }

  check(): void {
    if (this.controller.signal.aborted || this.handed <= this.acked) return;
    if (this.now() - this.since >= this.limitMs) {
      this.controller.abort(this.stalled());
      this.stop();
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

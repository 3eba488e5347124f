/**
 * Progress while a person waits (`run --wait`, `restore`, `drill`): the step, bytes done (of the total, when the step
 * knows it), the rate and the time left. On a terminal one line is rewritten in place every second; otherwise (a pipe,
 * a log file, CI) a plain line is printed when the step changes, at each quarter of a step's total, and every 10 s. The numbers come from the
 * workflow's `progress` query and the running activity's heartbeat details (`{ step, bytes, total }`).
 */
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { formatBytes } from '../lib/format.js';

export interface ProgressSample {
  step: string;
  bytes?: number;
  total?: number;
  /** Milliseconds (Date.now()). */
  at: number;
}

export interface ProgressView {
  step: string;
  bytes?: number;
  total?: number;
  /** Bytes per second over the last RATE_WINDOW_MS of this step. */
  rate?: number;
  /** Seconds left at that rate (steps with a total). */
  etaS?: number;
}

/** The rate is measured over this much of the recent past. */
const RATE_WINDOW_MS = 10_000;

/** Turns samples into views: the rate over the recent samples of the same step, and the ETA. */
export class ProgressMeter {
  private step: string | undefined;
  private samples: { bytes: number; at: number }[] = [];

  update(s: ProgressSample): ProgressView {
    const last = this.samples.at(-1);
    // another step, or another activity of it starting over (bytes went back): measure afresh
    if (s.step !== this.step || (s.bytes !== undefined && last !== undefined && s.bytes < last.bytes)) {
      this.step = s.step;
      this.samples = [];
    }
    if (s.bytes === undefined) return { step: s.step };
    this.samples.push({ bytes: s.bytes, at: s.at });
    this.samples = this.samples.filter((p) => s.at - p.at <= RATE_WINDOW_MS);
    const first = this.samples[0]!;
    const dt = (s.at - first.at) / 1000;
    const rate = dt >= 0.5 ? (s.bytes - first.bytes) / dt : undefined;
    const etaS = rate !== undefined && rate > 0 && s.total !== undefined && s.total >= s.bytes ? (s.total - s.bytes) / rate : undefined;
    return { step: s.step, bytes: s.bytes, ...(s.total !== undefined ? { total: s.total } : {}), ...(rate !== undefined ? { rate } : {}), ...(etaS !== undefined ? { etaS } : {}) };
  }
}

/** `42 s`, `3m05s`, `2h07m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** `upload 12.0 MiB of 48.0 MiB (25%), 4.0 MiB/s, ETA 9 s`; `dump 3.0 MiB, 1.0 MiB/s`; `verify`. */
export function formatProgress(v: ProgressView): string {
  let line = v.step;
  if (v.bytes !== undefined) {
    line += ` ${formatBytes(v.bytes)}`;
    if (v.total !== undefined && v.total > 0) line += ` of ${formatBytes(v.total)} (${Math.min(100, Math.floor((v.bytes / v.total) * 100))}%)`;
    if (v.rate !== undefined) line += `, ${formatBytes(Math.round(v.rate))}/s`;
    if (v.etaS !== undefined) line += `, ETA ${formatDuration(v.etaS)}`;
  }
  return line;
}

/** Where progress goes and how: a rewritten line on a terminal, plain lines elsewhere, or nothing (`--json`). */
export type ProgressMode = 'tty' | 'lines' | 'off';

export function progressMode(json: boolean | undefined, stream: { isTTY?: boolean } = process.stderr): ProgressMode {
  return json ? 'off' : stream.isTTY ? 'tty' : 'lines';
}

/** Plain lines: a new step, a quarter of the total passed (25%, 50%, 75%, 100%), or this long since the last line. */
const LINE_EVERY_MS = 10_000;

/** Writes views as `mode` says; `done()` clears the terminal's line. */
export function progressPrinter(mode: ProgressMode, write: (s: string) => void, columns = () => process.stderr.columns ?? 100): { show(v: ProgressView, now: number): void; done(): void } {
  let lastStep: string | undefined;
  let lastAt = 0;
  let lastQuarter = -1;
  let shown = false;
  return {
    show(v, now) {
      if (mode === 'tty') {
        write(`\r\x1b[K${formatProgress(v).slice(0, Math.max(20, columns() - 1))}`);
        shown = true;
      } else if (mode === 'lines') {
        const quarter = v.bytes !== undefined && v.total ? Math.floor((v.bytes / v.total) * 4) : -1;
        if (v.step !== lastStep || quarter > lastQuarter || now - lastAt >= LINE_EVERY_MS) {
          write(`progress: ${formatProgress(v)}\n`);
          if (v.step !== lastStep) lastQuarter = -1;
          lastStep = v.step;
          lastAt = now;
          lastQuarter = Math.max(lastQuarter, quarter);
        }
      }
    },
    done() {
      if (shown) write('\r\x1b[K');
      shown = false;
    },
  };
}

/**
 * Follows a running workflow at once and then once a second until the returned function is called: the running
 * activity's heartbeat details and its step (the heartbeat's `step`, else the workflow's `progress` query, else the
 * activity's name).
 */
export function progressTicker(handle: WorkflowHandle, mode: ProgressMode, write: (s: string) => void = (s) => process.stderr.write(s)): () => Promise<void> {
  if (mode === 'off') return () => Promise.resolve();
  const meter = new ProgressMeter();
  const printer = progressPrinter(mode, write);
  let stopped = false;
  let busy = false;
  const tick = async () => {
    const [p, d] = await Promise.all([handle.query<{ step?: string }>('progress').catch(() => undefined), handle.describe().catch(() => undefined)]);
    if (stopped) return;
    const activity = d?.raw.pendingActivities?.[0];
    const details = activity?.heartbeatDetails?.payloads?.[0];
    let hb: { step?: unknown; bytes?: unknown; total?: unknown } | undefined;
    try {
      hb = details ? defaultPayloadConverter.fromPayload(details) : undefined;
    } catch {
      hb = undefined;
    }
    // the bytes are the running activity's: name them by its own step when it says (checksum runs beside verify)
    const step = (typeof hb?.step === 'string' ? hb.step : undefined) ?? p?.step ?? activity?.activityType?.name ?? undefined;
    if (!step) return;
    const now = Date.now();
    printer.show(meter.update({
      step, at: now,
      ...(typeof hb?.bytes === 'number' ? { bytes: hb.bytes } : {}),
      ...(typeof hb?.total === 'number' ? { total: hb.total } : {}),
    }), now);
  };
  let inflight: Promise<void> = Promise.resolve();
  const run = () => {
    if (busy || stopped) return;
    busy = true;
    inflight = tick().catch(() => undefined).finally(() => { busy = false; });
  };
  run();
  const timer = setInterval(run, 1000);
  // Settles when the last query and describe have: the caller closes the connection (and the CLI's worker, which
  // answers the query) only after that, or the client's retry of a call in flight would throw on a closed channel.
  return async () => {
    stopped = true;
    clearInterval(timer);
    printer.done();
    await inflight;
  };
}

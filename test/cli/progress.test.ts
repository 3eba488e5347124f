import { describe, expect, it } from 'vitest';
import { ProgressMeter, formatDuration, formatProgress, progressMode, progressPrinter } from '../../src/cli/progress.js';

/** Progress: the rate and ETA from samples, the line, and how it is written to a terminal or a pipe. */

const MiB = 1024 * 1024;

describe('progress', () => {
  it('measures the rate over the recent samples of a step, and the time left', () => {
    const m = new ProgressMeter();
    expect(m.update({ step: 'upload', bytes: 0, total: 100 * MiB, at: 0 })).toEqual({ step: 'upload', bytes: 0, total: 100 * MiB });
    expect(m.update({ step: 'upload', bytes: 10 * MiB, total: 100 * MiB, at: 1000 })).toEqual({ step: 'upload', bytes: 10 * MiB, total: 100 * MiB, rate: 10 * MiB, etaS: 9 });
    expect(m.update({ step: 'upload', bytes: 30 * MiB, total: 100 * MiB, at: 2000 })).toMatchObject({ rate: 15 * MiB, etaS: 70 / 15 });
    // samples older than 10 s no longer count: from the one at 2 s
    expect(m.update({ step: 'upload', bytes: 60 * MiB, total: 100 * MiB, at: 12_000 })).toMatchObject({ rate: 3 * MiB, etaS: 40 / 3 });
  });

  it('starts afresh on another step, or when the bytes go back (a retried attempt); no total, no ETA', () => {
    const m = new ProgressMeter();
    m.update({ step: 'dump', bytes: 0, at: 0 });
    expect(m.update({ step: 'dump', bytes: 4 * MiB, at: 2000 })).toEqual({ step: 'dump', bytes: 4 * MiB, rate: 2 * MiB });
    expect(m.update({ step: 'upload', bytes: 8 * MiB, total: 16 * MiB, at: 3000 })).toEqual({ step: 'upload', bytes: 8 * MiB, total: 16 * MiB });
    expect(m.update({ step: 'upload', bytes: 1 * MiB, total: 16 * MiB, at: 4000 })).toEqual({ step: 'upload', bytes: 1 * MiB, total: 16 * MiB });
    expect(m.update({ step: 'verify', at: 5000 })).toEqual({ step: 'verify' });
  });

  it('formats the line', () => {
    expect(formatProgress({ step: 'upload', bytes: 12 * MiB, total: 48 * MiB, rate: 4 * MiB, etaS: 9 })).toBe('upload 12.0 MiB of 48.0 MiB (25%), 4.0 MiB/s, ETA 9 s');
    expect(formatProgress({ step: 'dump', bytes: 3 * MiB, rate: 1.5 * MiB })).toBe('dump 3.0 MiB, 1.5 MiB/s');
    expect(formatProgress({ step: 'fetch', bytes: 0, total: 10 })).toBe('fetch 0 B of 10 B (0%)');
    expect(formatProgress({ step: 'verify' })).toBe('verify');
    expect([0, 0.2, 59, 61, 3599, 3600, 7620].map(formatDuration)).toEqual(['0 s', '1 s', '59 s', '1m01s', '59m59s', '1h00m', '2h07m']);
  });

  it('a terminal gets one line rewritten in place, cut to its width; done clears it', () => {
    const out: string[] = [];
    const p = progressPrinter('tty', (s) => out.push(s), () => 30);
    p.show({ step: 'upload', bytes: 12 * MiB, total: 48 * MiB, rate: 4 * MiB, etaS: 9 }, 0);
    p.show({ step: 'upload', bytes: 16 * MiB, total: 48 * MiB, rate: 4 * MiB, etaS: 8 }, 1000);
    p.done();
    p.done();
    expect(out).toEqual(['\r\x1b[Kupload 12.0 MiB of 48.0 MiB (', '\r\x1b[Kupload 16.0 MiB of 48.0 MiB (', '\r\x1b[K']);
    expect(out.join('')).not.toContain('\n');
  });

  it('a pipe gets plain lines: at each new step, each quarter of a total, and every 10 s; no control characters', () => {
    const out: string[] = [];
    const p = progressPrinter('lines', (s) => out.push(s));
    p.show({ step: 'dump', bytes: 0 }, 0);
    p.show({ step: 'dump', bytes: MiB, rate: MiB }, 1000);
    p.show({ step: 'dump', bytes: 10 * MiB, rate: MiB }, 10_000);
    p.show({ step: 'upload', bytes: 0, total: 4 * MiB }, 11_000);
    p.show({ step: 'upload', bytes: MiB / 2, total: 4 * MiB, rate: MiB / 2, etaS: 7 }, 12_000);
    p.show({ step: 'upload', bytes: 3 * MiB, total: 4 * MiB, rate: MiB, etaS: 1 }, 13_000);
    p.show({ step: 'upload', bytes: 3 * MiB + 1, total: 4 * MiB, rate: MiB, etaS: 1 }, 14_000);
    p.show({ step: 'verify' }, 15_000);
    p.done();
    expect(out).toEqual([
      'progress: dump 0 B\n', 'progress: dump 10.0 MiB, 1.0 MiB/s\n', 'progress: upload 0 B of 4.0 MiB (0%)\n',
      'progress: upload 3.0 MiB of 4.0 MiB (75%), 1.0 MiB/s, ETA 1 s\n', 'progress: verify\n',
    ]);
    expect(out.join('')).not.toContain('\r');
    expect(out.join('')).not.toContain('\x1b');
  });

  it('--json prints no progress; a terminal rewrites; anything else gets lines', () => {
    expect(progressMode(true, { isTTY: true })).toBe('off');
    expect(progressMode(false, { isTTY: true })).toBe('tty');
    expect(progressMode(undefined, { isTTY: false })).toBe('lines');
    expect(progressMode(undefined, {})).toBe('lines');
  });
});

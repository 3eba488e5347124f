/** Summary statistics and plain-text tables for the benchmark report. MB = 1e6 bytes. */

export interface Summary {
  n: number;
  /** Wall seconds. */
  median: number;
  min: number;
  max: number;
  /** Throughput in MB/s (1e6 bytes per second) at the median, the fastest and the slowest run. */
  mbps: { median: number; best: number; worst: number };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarize(seconds: readonly number[], bytes: number): Summary {
  const med = median(seconds);
  const min = Math.min(...seconds);
  const max = Math.max(...seconds);
  return {
    n: seconds.length,
    median: med,
    min,
    max,
    mbps: { median: bytes / 1e6 / med, best: bytes / 1e6 / min, worst: bytes / 1e6 / max },
  };
}

export const fmt = (v: number | undefined, digits = 2): string => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));

/** Renders rows as a left-aligned text table with a header rule. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (c ?? '').padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Fills a contender's summary (over its measured runs) and its median per phase. */
export function summarizeContender(c: {
  runs: readonly { seconds: number; phases?: Record<string, number>; cpuByCommand?: Record<string, number> }[];
  summary: Summary; phaseMedians: Record<string, number>; cpuMedians?: Record<string, number>;
}, bytes: number): void {
  c.summary = summarize(c.runs.map((r) => r.seconds), bytes);
  c.phaseMedians = medians(c.runs.map((r) => r.phases));
  if (c.runs.some((r) => r.cpuByCommand)) c.cpuMedians = cpuMedians(c.runs.map((r) => r.cpuByCommand));
}

/** Per key, the median over the records; a record without the key counts as `missing` (NaN: it is left out). */
function medians(records: readonly (Record<string, number> | undefined)[], missing = Number.NaN): Record<string, number> {
  const keys = [...new Set(records.flatMap((r) => Object.keys(r ?? {})))];
  return Object.fromEntries(keys.map((k) => [k, median(records.map((r) => r?.[k] ?? missing).filter(Number.isFinite))]));
}

/** Per command, the median CPU seconds over the runs (0 in a run where it did not appear), largest first. */
function cpuMedians(records: readonly (Record<string, number> | undefined)[]): Record<string, number> {
  return Object.fromEntries(Object.entries(medians(records, 0)).filter(([, v]) => v >= 0.005).sort((a, b) => b[1] - a[1]));
}

/** "zstd 4.10, node/node 1.80, …": the largest `n` entries of a CPU profile, seconds. */
export function cpuText(cpu: Record<string, number> | undefined, n = 8): string {
  if (!cpu) return '';
  return Object.entries(cpu).sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
}

/**
 * backupctl's backup metrics in Prometheus' text exposition format (version 0.0.4), computed from job overviews
 * (src/monitor/overview.ts): manifests and drill reports on the destinations, and the runs Temporal remembers. Nothing
 * is counted in memory, so a restarted worker serves the same values. The worker serves them beside the Temporal SDK's
 * own metrics (src/runtime/metrics-server.ts); the alert rules are deploy/prometheus/alerts.yml.
 */
import type { BackupType, Step } from '../contracts/backup.js';
import { isFailedRun } from './runs.js';
import type { JobOverview } from './overview.js';
import type { Health } from './status.js';

export interface Sample { labels: Record<string, string>; value: number }
export interface MetricFamily { name: string; help: string; type: 'gauge' | 'counter'; samples: Sample[] }

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const formatValue = (v: number) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));

/** The text format: `# HELP`, `# TYPE`, then one line per sample, `name{label="value",…} value`. */
export function renderExposition(families: MetricFamily[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
      lines.push(`${f.name}${labels ? `{${labels}}` : ''} ${formatValue(s.value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export const HEALTH_STATES: readonly Health[] = ['ok', 'warning', 'failing', 'stale'];
/** The steps of a backup run, for failure counts that exist (as 0) before the first failure. */
const STEPS: readonly Step[] = ['lock', 'preflight', 'dump', 'archive', 'upload', 'verify', 'checksum', 'finalize', 'notify', 'cleanup'];

const seconds = (iso: string) => Date.parse(iso) / 1000;

/** The metric families of these jobs. */
export function backupMetrics(jobs: JobOverview[]): MetricFamily[] {
  const fam = (name: string, type: MetricFamily['type'], help: string): MetricFamily => ({ name, type, help, samples: [] });
  const lastSuccess = fam('backupctl_last_success_timestamp_seconds', 'gauge', 'Slot time (the point in time it holds) of the newest finalized, signed backup per job, type and destination, from the manifests.');
  const threshold = fam('backupctl_freshness_threshold_seconds', 'gauge', 'The job\'s freshness threshold per type: a newest backup older than this is stale.');
  const size = fam('backupctl_backup_size_bytes', 'gauge', 'Artifact size of the newest finalized backup per job and type, from the manifests.');
  const duration = fam('backupctl_backup_duration_seconds', 'gauge', 'Time per step of the newest successful run per job and type (step="total": the whole run), from Temporal\'s run history.');
  const failures = fam('backupctl_backup_failures_total', 'counter', 'Failed backup runs per job and the step they failed in, among the runs Temporal keeps (its namespace retention).');
  const drillOk = fam('backupctl_drill_last_success_timestamp_seconds', 'gauge', 'Finish time of the newest passed restore drill, from the signed drill reports.');
  const drillLast = fam('backupctl_drill_last_timestamp_seconds', 'gauge', 'Finish time of the newest restore drill, passed or failed.');
  const drillResult = fam('backupctl_drill_last_result', 'gauge', 'Result of the newest restore drill: 1 passed, 0 failed.');
  const rto = fam('backupctl_drill_rto_seconds', 'gauge', 'Measured restore time (download, checksums, unpack, database loads) of the newest passed restore drill.');
  const health = fam('backupctl_job_health', 'gauge', 'The job\'s health as backupctl status judges it: 1 for its current state, 0 for the others.');
  const unreadable = fam('backupctl_destination_unreadable', 'gauge', 'A destination of the job could not be read when the metrics were computed (1).');

  for (const o of jobs) {
    const job = o.job;
    for (const t of o.types) threshold.samples.push({ labels: { job, type: t }, value: o.freshness[t] / 1000 });
    const newest = new Map<string, (typeof o.backups)[number]>();
    const newestOfType = new Map<BackupType, (typeof o.backups)[number]>();
    for (const b of o.backups) {
      const key = `${b.type}\0${b.destination}`;
      if (!newest.has(key) || newest.get(key)!.slot < b.slot) newest.set(key, b);
      if (!newestOfType.has(b.type) || newestOfType.get(b.type)!.slot <= b.slot) newestOfType.set(b.type, b);
    }
    for (const b of [...newest.values()].sort((x, y) => `${x.type}${x.destination}`.localeCompare(`${y.type}${y.destination}`))) {
      lastSuccess.samples.push({ labels: { job, type: b.type, destination: b.destination }, value: seconds(b.slot) });
    }
    for (const [type, b] of [...newestOfType].sort()) size.samples.push({ labels: { job, type }, value: b.size });

    for (const type of ['full', 'diff'] as const) {
      const run = [...o.runs].reverse().find((r) => r.type === type && r.closeTime && (r.outcome === 'succeeded' || r.outcome === 'succeeded_with_warnings'));
      if (!run) continue;
      for (const [step, ms] of Object.entries(run.steps)) duration.samples.push({ labels: { job, type, step }, value: ms / 1000 });
      duration.samples.push({ labels: { job, type, step: 'total' }, value: (Date.parse(run.closeTime!) - Date.parse(run.startTime)) / 1000 });
    }

    const failed = new Map<string, number>(STEPS.map((s) => [s, 0]));
    for (const r of o.runs) if (r.closeTime && isFailedRun(r)) failed.set(r.failedStep ?? 'unknown', (failed.get(r.failedStep ?? 'unknown') ?? 0) + 1);
    for (const [step, n] of failed) failures.samples.push({ labels: { job, step }, value: n });

    const lastDrill = o.drills.at(-1);
    const lastPassed = [...o.drills].reverse().find((d) => d.ok);
    if (lastDrill) {
      drillLast.samples.push({ labels: { job }, value: seconds(lastDrill.finishedAt) });
      drillResult.samples.push({ labels: { job }, value: lastDrill.ok ? 1 : 0 });
    }
    if (lastPassed) {
      drillOk.samples.push({ labels: { job }, value: seconds(lastPassed.finishedAt) });
      if (typeof lastPassed.restoreMs === 'number') rto.samples.push({ labels: { job }, value: lastPassed.restoreMs / 1000 });
    }
    for (const state of HEALTH_STATES) health.samples.push({ labels: { job, state }, value: o.health === state ? 1 : 0 });
    for (const d of o.destinations) unreadable.samples.push({ labels: { job, destination: d }, value: o.unreadable.some((u) => u.destination === d) ? 1 : 0 });
  }
  return [lastSuccess, threshold, size, duration, failures, drillOk, drillLast, drillResult, rto, health, unreadable];
}

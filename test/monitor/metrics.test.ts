import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { backupMetrics, renderExposition } from '../../src/monitor/metrics.js';
import type { JobOverview } from '../../src/monitor/overview.js';
import type { RunRecord } from '../../src/monitor/runs.js';

/** backupctl's metrics from a job's overview, in the text format that promtool accepts. */

const run = (p: Partial<RunRecord> & Pick<RunRecord, 'workflowId' | 'startTime'>): RunRecord => ({ runId: `${p.workflowId}-r`, status: 'COMPLETED', steps: {}, ...p });
const backup = (destination: string, type: 'full' | 'diff', slot: string, size: number) => ({ destination, type, tier: 'daily', slot, createdAt: slot, size, workflowId: `backup-app-${type}-${slot}`, path: `daily/${slot}` });

const app: JobOverview = {
  job: 'app', health: 'failing', problems: ['the last 2 runs failed'], types: ['full', 'diff'], freshness: { full: 90_000_000, diff: 25_200_000 },
  destinations: ['nas', 'offsite'],
  backups: [
    backup('nas', 'full', '2026-11-01T03:00:00.000Z', 1000), backup('offsite', 'full', '2026-11-01T03:00:00.000Z', 1000),
    backup('nas', 'diff', '2026-11-01T09:00:00.000Z', 50), backup('nas', 'full', '2026-11-02T03:00:00.000Z', 1200),
  ],
  runs: [
    run({ workflowId: 'f1', type: 'full', outcome: 'succeeded', startTime: '2026-11-01T03:00:00.000Z', closeTime: '2026-11-01T03:00:30.000Z', steps: { dump: 10_000, upload: 15_500 } }),
    run({ workflowId: 'f2', type: 'full', outcome: 'succeeded_with_warnings', startTime: '2026-11-02T03:00:00.000Z', closeTime: '2026-11-02T03:01:00.000Z', steps: { dump: 20_000, upload: 30_000, verify: 2_000 } }),
    run({ workflowId: 'f3', type: 'full', status: 'FAILED', outcome: 'failed', startTime: '2026-11-03T03:00:00.000Z', closeTime: '2026-11-03T03:00:05.000Z', failedStep: 'upload' }),
    run({ workflowId: 'f4', type: 'full', status: 'FAILED', startTime: '2026-11-04T03:00:00.000Z', closeTime: '2026-11-04T03:00:05.000Z' }),
    run({ workflowId: 'd1', type: 'diff', status: 'RUNNING', startTime: '2026-11-04T09:00:00.000Z' }),
  ],
  drills: [
    { format: 'backupctl-drill/1', job: 'app', workflowId: 'drill1', ok: true, startedAt: '2026-11-01T05:00:00.000Z', finishedAt: '2026-11-01T05:01:00.000Z', restoreMs: 42_500, checks: [], problems: [], destination: 'nas' },
    { format: 'backupctl-drill/1', job: 'app', workflowId: 'drill2', ok: false, startedAt: '2026-11-08T05:00:00.000Z', finishedAt: '2026-11-08T05:01:00.000Z', restoreMs: 1_000, checks: [], problems: ['x'], destination: 'nas' },
  ],
  unreadable: [{ destination: 'offsite', error: 'connection refused' }],
  generatedAt: '2026-11-08T06:00:00.000Z',
};
const t = (iso: string) => Date.parse(iso) / 1000;

describe('backup metrics', () => {
  const text = renderExposition(backupMetrics([app, { ...app, job: 'db "main"\\x', backups: [], runs: [], drills: [], unreadable: [], health: 'ok' }]));
  const value = (series: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  it('the newest backup per type and destination, sizes, thresholds', () => {
    expect(value('backupctl_last_success_timestamp_seconds{job="app",type="full",destination="nas"}')).toBe(t('2026-11-02T03:00:00.000Z'));
    expect(value('backupctl_last_success_timestamp_seconds{job="app",type="full",destination="offsite"}')).toBe(t('2026-11-01T03:00:00.000Z'));
    expect(value('backupctl_last_success_timestamp_seconds{job="app",type="diff",destination="nas"}')).toBe(t('2026-11-01T09:00:00.000Z'));
    expect(value('backupctl_backup_size_bytes{job="app",type="full"}')).toBe(1200);
    expect(value('backupctl_backup_size_bytes{job="app",type="diff"}')).toBe(50);
    expect(value('backupctl_freshness_threshold_seconds{job="app",type="full"}')).toBe(90_000);
    expect(value('backupctl_freshness_threshold_seconds{job="app",type="diff"}')).toBe(25_200);
  });

  it('step durations of the newest successful run, failures per step, health', () => {
    expect(value('backupctl_backup_duration_seconds{job="app",type="full",step="upload"}')).toBe(30);
    expect(value('backupctl_backup_duration_seconds{job="app",type="full",step="verify"}')).toBe(2);
    expect(value('backupctl_backup_duration_seconds{job="app",type="full",step="total"}')).toBe(60);
    expect(text).not.toContain('backupctl_backup_duration_seconds{job="app",type="diff"');
    expect(value('backupctl_backup_failures_total{job="app",step="upload"}')).toBe(1);
    expect(value('backupctl_backup_failures_total{job="app",step="unknown"}')).toBe(1);
    expect(value('backupctl_backup_failures_total{job="app",step="dump"}')).toBe(0);
    expect(value('backupctl_job_health{job="app",state="failing"}')).toBe(1);
    expect(value('backupctl_job_health{job="app",state="ok"}')).toBe(0);
    expect(value('backupctl_destination_unreadable{job="app",destination="offsite"}')).toBe(1);
    expect(value('backupctl_destination_unreadable{job="app",destination="nas"}')).toBe(0);
  });

  it('drills: the newest passed one and its RTO, the newest one\'s result', () => {
    expect(value('backupctl_drill_last_success_timestamp_seconds{job="app"}')).toBe(t('2026-11-01T05:01:00.000Z'));
    expect(value('backupctl_drill_rto_seconds{job="app"}')).toBe(42.5);
    expect(value('backupctl_drill_last_result{job="app"}')).toBe(0);
    expect(value('backupctl_drill_last_timestamp_seconds{job="app"}')).toBe(t('2026-11-08T05:01:00.000Z'));
  });

  it('escapes label values', () => {
    expect(value('backupctl_job_health{job="db \\"main\\"\\\\x",state="ok"}')).toBe(1);
  });

  it('promtool check metrics accepts the output', () => {
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
    // and refuses what is not the format, so the check above can fail
    const bad = spawnSync('promtool', ['check', 'metrics'], { input: `${text}backupctl_x{job="a} 1\n`, encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
  });

  it('promtool lints what it should: a counter without _total is reported', () => {
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: '# HELP x_count a\n# TYPE x_count counter\nx_count 1\n', encoding: 'utf8' });
    expect(`${lint.stdout}${lint.stderr}`).toMatch(/_total/);
    expect(execFileSync('promtool', ['--version'], { encoding: 'utf8' })).toMatch(/promtool/);
  });
});

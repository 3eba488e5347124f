import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { DRILL_WORKFLOW, type DrillReport } from '../../src/contracts/drill.js';
import { startMetricsServer } from '../../src/runtime/metrics-server.js';
import { resultOf, runBackup } from '../helpers/run-backup.js';
import { runCommand, waitFor } from '../helpers/util.js';
import { startEnv, withWorker, writeJob, type Env, type JobSetup } from './fixture.js';

/**
 * The metrics and the HTML report from real runs: two fulls and a diff into sftp, a run that fails in its upload step,
 * and a restore drill. The metrics pass promtool and are the same from a second server (a restarted worker); the
 * report, opened in headless Chromium, draws one point per backup and marks the failure.
 */

const cli = path.resolve(import.meta.dirname, '../../bin/backupctl.js');
// The shared Temporal server holds other files' runs of jobs named `app`: this job has its own name.
const JOB = `report${process.pid}`;
let env: Env;
let job: JobSetup;
const slots = [3, 2, 1.5, 1].map((h) => new Date(Date.now() - h * 3_600_000));
const results: { workflowId: string; type: string; size?: number; failed?: boolean }[] = [];
let drill: DrillReport;

beforeAll(async () => {
  env = await startEnv();
  job = await writeJob(env, (c) => {
    c.jobs = { [JOB]: c.jobs.app };
    c.jobs[JOB].notify = [];
  });
  let failNext = false;
  await withWorker(env, job, async () => {
    const run = (type: 'full' | 'diff', slot: Date) => runBackup(env.client, { taskQueue: job.taskQueue, job: JOB, type, slot });
    const r1 = resultOf(await run('full', slots[0]!));
    writeFileSync(path.join(job.dataDir, 'more.txt'), 'x'.repeat(5000));
    const r2 = resultOf(await run('diff', slots[1]!));
    failNext = true;
    const r3 = await run('full', slots[2]!);
    expect(r3.status).toBe('failed');
    const r4 = resultOf(await run('full', slots[3]!));
    results.push({ workflowId: r1.workflowId, type: 'full', size: r1.size }, { workflowId: r2.workflowId, type: 'diff', size: r2.size },
      { workflowId: r3.handle.workflowId, type: 'full', failed: true }, { workflowId: r4.workflowId, type: 'full', size: r4.size });
    drill = (await env.client.workflow.execute(DRILL_WORKFLOW, { taskQueue: job.taskQueue, workflowId: `drill-${JOB}-${Date.now()}`, args: [{ job: JOB }] })) as DrillReport;
  }, (a) => ({
    ...a,
    upload: async (input) => {
      if (failNext) {
        failNext = false;
        throw ApplicationFailure.create({ type: 'UPLOAD_CORRUPTED', message: 'injected: the upload broke', nonRetryable: true });
      }
      return a.upload(input);
    },
  }));
  expect(drill.ok).toBe(true);
  // The visibility store lists the closed runs with their outcome.
  await waitFor(async () => {
    let n = 0;
    for await (const w of env.client.workflow.list({ query: `BackupJob="${JOB}" AND ExecutionStatus!="Running"` })) if (w.searchAttributes?.BackupOutcome?.[0]) n++;
    return n === 4;
  }, { timeoutMs: 30_000, description: 'the four runs in the visibility store' });
});
afterAll(async () => { await env?.close(); });

const sec = (d: Date) => Date.parse(d.toISOString()) / 1000;

describe('metrics and report from real runs', () => {
  it('the metrics endpoint serves backup metrics that promtool accepts, and a second server serves the same', async () => {
    const { config } = loadConfig(job.configFile);
    const scrape = async () => {
      const server = await startMetricsServer({ config, client: env.client, host: '127.0.0.1', port: 0 });
      try {
        const res = await fetch(`${server.url}/metrics`);
        expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
        return await res.text();
      } finally {
        await server.close();
      }
    };
    const text = await scrape();
    const value = (series: string) => Number(text.split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1]);
    expect(value(`backupctl_last_success_timestamp_seconds{job="${JOB}",type="full",destination="nas"}`)).toBe(Math.floor(sec(slots[3]!)));
    expect(value(`backupctl_last_success_timestamp_seconds{job="${JOB}",type="diff",destination="nas"}`)).toBe(Math.floor(sec(slots[1]!)));
    expect(value(`backupctl_backup_size_bytes{job="${JOB}",type="full"}`)).toBe(results[3]!.size);
    expect(value(`backupctl_backup_size_bytes{job="${JOB}",type="diff"}`)).toBe(results[1]!.size);
    expect(value(`backupctl_backup_failures_total{job="${JOB}",step="upload"}`)).toBe(1);
    expect(value(`backupctl_backup_failures_total{job="${JOB}",step="dump"}`)).toBe(0);
    for (const step of ['lock', 'preflight', 'dump', 'archive', 'upload', 'verify', 'finalize', 'total']) {
      expect(value(`backupctl_backup_duration_seconds{job="${JOB}",type="full",step="${step}"}`), step).toBeGreaterThan(0);
    }
    expect(value(`backupctl_drill_last_success_timestamp_seconds{job="${JOB}"}`)).toBe(Date.parse(drill.finishedAt) / 1000);
    expect(value(`backupctl_drill_rto_seconds{job="${JOB}"}`)).toBe(drill.restoreMs! / 1000);
    expect(value(`backupctl_drill_last_result{job="${JOB}"}`)).toBe(1);
    expect(text).toMatch(new RegExp(`^backupctl_job_health\\{job="${JOB}",state="(ok|warning)"\\} 1$`, 'm'));
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${check.stdout}${check.stderr}`).toBe('');
    expect(check.status).toBe(0);
    // A restarted worker computes them again from the destinations and Temporal: the same text.
    expect(await scrape()).toBe(text);
  });

  it('backupctl report writes one self-contained HTML file; Chromium draws one point per backup and marks the failure', async () => {
    const out = path.join(env.tmp.path, 'report', 'report.html');
    mkdirSync(path.dirname(out), { recursive: true });
    const r = await runCommand(process.execPath, [cli, '--config', job.configFile, 'report', '--job', JOB, '--out', out], { timeoutMs: 120_000, env: { ...process.env, TEMPORAL_ADDRESS: env.address } });
    expect(r.code, r.stderr).toBe(0);
    const html = readFileSync(out, 'utf8');
    // nothing loaded from elsewhere: no src= or href= to any URL, no @import
    expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/@import|<link\b/i);
    const chrome = (...args: string[]) => spawnSync('chromium-headless-shell', ['--no-sandbox', '--headless', '--disable-gpu', '--hide-scrollbars', '--virtual-time-budget=5000', ...args, `file://${out}`], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 60_000 });
    const dom = chrome('--dump-dom').stdout;
    expect(dom).toContain('<body data-rendered="true">');
    const section = dom.slice(dom.indexOf(`<section class="job" data-job="${JOB}"`));
    expect(section.length).toBeLessThan(dom.length);
    const points = (figure: string, series: string) => [...section.slice(section.indexOf(`<figure class="${figure}"`)).split('</figure>')[0]!
      .matchAll(new RegExp(`<span class="point" data-series="${series}" data-x="(\\d+)" data-y="([\\d.]*)" data-id="([^"]*)">`, 'g'))].map((m) => ({ x: Number(m[1]), y: m[2], id: m[3] }));
    expect(section).toMatch(/<figure class="sizes" data-rendered="true">/);
    expect(points('sizes', 'full').map((p) => p.id)).toEqual([results[0]!.workflowId, results[3]!.workflowId]);
    expect(points('sizes', 'full').map((p) => Number(p.y))).toEqual([results[0]!.size, results[3]!.size]);
    expect(points('sizes', 'diff').map((p) => p.id)).toEqual([results[1]!.workflowId]);
    expect(points('sizes', 'failed').map((p) => p.id)).toEqual([results[2]!.workflowId]);
    expect(section).toMatch(new RegExp(`<tr class="run failed" data-workflow="${results[2]!.workflowId}">.*upload: `));
    expect(points('steps', 'upload').map((p) => p.id).sort()).toEqual(results.map((x) => x.workflowId).sort());
    expect(points('drills', 'passed')).toEqual([{ x: Math.round(Date.parse(drill.finishedAt) / 1000), y: String(drill.restoreMs! / 1000), id: drill.workflowId }]);
    expect(section).toMatch(new RegExp(`<tr class="destination" data-destination="nas" data-newest="${results[3]!.workflowId}">`));
    expect(section).toMatch(/<div class="fresh ok" data-type="full"/);
    const shot = path.join(env.tmp.path, 'report', 'report.png');
    chrome('--window-size=1000,1500', `--screenshot=${shot}`);
    expect(readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');
    if (process.env.BACKUPCTL_REPORT_SCREENSHOT) writeFileSync(process.env.BACKUPCTL_REPORT_SCREENSHOT, readFileSync(shot));
  });
});

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { Manifest } from '../../src/contracts/index.js';
import { getFreePort } from '../helpers/free-port.js';
import { runCommand, waitFor } from '../helpers/util.js';
import { listFiles, sha256File, startEnv, withWorker, writeJob, type Env, type JobSetup } from './fixture.js';

const cli = path.resolve(import.meta.dirname, '../../bin/backupctl.js');

let env: Env;
beforeAll(async () => { env = await startEnv(); });
afterAll(async () => { await env?.close(); });

const backupctl = (args: string[]) => runCommand(process.execPath, [cli, ...args], { timeoutMs: 120_000, env: { ...process.env, TEMPORAL_ADDRESS: env.address } });

/** A schedule's ID: it carries the config's deployment (default: the config file's name and a hash of its path). */
const sid = (job: JobSetup, name: string) => `backupctl:${loadConfig(job.configFile).config.temporal.deployment}:app:${name}`;

describe('backupctl CLI against real servers', () => {
  it('run --wait --json into a local destination: exit 0, the result names the stored, verified file', async () => {
    const job = await writeJob(env, (c) => {
      const dir = path.join(env.tmp.path, 'nas-share');
      mkdirSync(dir, { recursive: true });
      c.destinations = { nas: { type: 'local', path: dir } };
    });
    const r = await withWorker(env, job, () => backupctl(['--config', job.configFile, 'run', 'app', '--wait', '--json']));
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { status: string; workflowId: string; remotePath: string; size: number; sha256: string; warnings: string[] };
    expect(out).toMatchObject({ status: 'succeeded', warnings: [], workflowId: expect.stringMatching(new RegExp(`^backup:${job.deployment}:app:full-\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`)) });
    const final = path.join(env.tmp.path, 'nas-share', out.remotePath);
    expect(sha256File(final)).toBe(out.sha256);
    const manifest = JSON.parse(readFileSync(`${final}.manifest.json`, 'utf8')) as Manifest;
    expect(manifest.artifact).toMatchObject({ size: out.size, sha256: out.sha256 });
    expect(listFiles(path.join(env.tmp.path, 'nas-share')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('a file changing while it is archived is a warning, not a failure: exit 3, recorded in the manifest and the mail', async () => {
    const share = path.join(env.tmp.path, 'nas-warn');
    mkdirSync(share, { recursive: true });
    const job = await writeJob(env, (c) => { c.destinations = { nas: { type: 'local', path: share } }; });
    const busy = path.join(job.dataDir, 'busy.log');
    writeFileSync(busy, randomBytes(64 * 1024 * 1024));
    // A writer appending to the file while tar reads it (incident 03's "file changed as we read it").
    const writer = spawn('sh', ['-c', `while :; do echo x >> '${busy}'; done`], { stdio: 'ignore' });
    let r;
    try {
      r = await withWorker(env, job, () => backupctl(['--config', job.configFile, 'run', 'app', '--wait', '--json']));
    } finally {
      writer.kill('SIGKILL');
    }
    expect(r.code, r.stderr).toBe(3);
    const out = JSON.parse(r.stdout) as { status: string; workflowId: string; remotePath: string; sha256: string; warnings: string[] };
    expect(out.status).toBe('succeeded_with_warnings');
    expect(out.warnings.join('\n')).toMatch(/source "app-files": files changed while being archived \(tar exit 1\): .*busy\.log: file changed as we read it/);
    const final = path.join(share, out.remotePath);
    expect(sha256File(final)).toBe(out.sha256);
    const manifest = JSON.parse(readFileSync(`${final}.manifest.json`, 'utf8')) as Manifest;
    expect(manifest.warnings.join('\n')).toMatch(/file changed as we read it/);
    // The archive is still valid: the component lists and its hash matches.
    expect(execFileSync('sh', ['-c', `tar -xOf '${final}' app-files.tar.zst | zstd -dc | tar -t | grep -c busy.log`], { encoding: 'utf8' }).trim()).toBe('1');
    const mail = await env.smtp.waitFor((m) => m.text?.includes(out.workflowId) === true);
    expect(mail.subject).toMatch(/^\[backupctl\] WARNING: app full backup .* \(1 warning\)$/);
    expect(mail.text).toMatch(/WARNINGS:\n {2}- source "app-files": files changed while being archived/);
  });

  it('run --wait exits 1 on failure and prints the step and the Web UI link', async () => {
    const job = await writeJob(env, (c) => { c.jobs.app.sources[0].paths = ['/nonexistent/for-cli-test']; });
    const r = await withWorker(env, job, () => backupctl(['--config', job.configFile, 'run', 'app', '--wait']));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/failed: backup app failed in the dump step: source "app-files": tar exited 2/);
    expect(r.stderr).toContain(`http://localhost:8233/namespaces/default/workflows/${encodeURIComponent(`backup:${job.deployment}:app:full-`)}`);
  });

  it('run --wait off a terminal prints plain progress lines: step, bytes of the total, rate and ETA', async () => {
    const job = await writeJob(env, (c) => { c.destinations.nas.bandwidthLimit = '4MB'; });
    writeFileSync(path.join(job.dataDir, 'random.bin'), randomBytes(16 << 20));
    const r = await withWorker(env, job, () => backupctl(['--config', job.configFile, 'run', 'app', '--wait']));
    expect(r.code, r.stderr).toBe(0);
    // stderr is a pipe here: whole lines, no carriage returns or escape sequences
    expect(r.stderr).not.toContain('\r');
    expect(r.stderr).not.toContain('\x1b');
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('progress: '));
    expect(lines.length, r.stderr).toBeGreaterThan(1);
    expect(lines.some((l) => /^progress: upload [\d.]+ [KMG]?i?B of 16\.\d MiB \(\d+%\), [\d.]+ [KMG]?i?B\/s, ETA \d+ s$/.test(l)), lines.join('\n')).toBe(true);
  });

  it('config check logs in over SSH, checks write access and free space, and verifies SMTP, without backing up', async () => {
    const job = await writeJob(env);
    const before = listFiles(env.sshd.root);
    const r = await backupctl(['--config', job.configFile, 'config', 'check']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ok {4}job app source app-files: files: /);
    expect(r.stdout).toMatch(new RegExp(`ok {4}destination nas: sftp://${env.sshd.user}@127\\.0\\.0\\.1:${env.sshd.port}\\S+ reachable, writable, [\\d.]+ [KMGT]iB free`));
    expect(r.stdout).toMatch(/ok {4}notifier ops: smtp 127\.0\.0\.1:\d+ accepts connections and the login for mailer/);
    expect(listFiles(env.sshd.root)).toEqual(before);

    // A wrong SMTP password and a wrong host key fail the check (exit 1) and say what failed.
    const bad = readFileSync(job.configFile, 'utf8').replace(/hostKey: .*/, 'hostKey: SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB');
    const badFile = path.join(path.dirname(job.configFile), 'bad.yml');
    writeFileSync(badFile, bad);
    const r2 = await runCommand(process.execPath, [cli, '--config', badFile, 'config', 'check'], { timeoutMs: 60_000, env: { ...process.env, TEST_SMTP_PASSWORD: 'wrong' } });
    expect(r2.code).toBe(1);
    expect(r2.stdout).toMatch(/FAIL {2}destination nas: .*host key mismatch/);
    expect(r2.stdout).toMatch(/FAIL {2}notifier ops: .*authentication failed/);
  });

  it('backupctl worker applies the schedules on start and serves Prometheus metrics, its backup metrics and the report when configured', async () => {
    const port = await getFreePort();
    const job = await writeJob(env, (c) => {
      c.metrics = { prometheus: `127.0.0.1:${port}` };
      c.jobs.app.schedules = [{ name: 'nightly', type: 'full', cron: '30 2 * * *', timezone: 'Europe/Berlin' }];
    });
    const child = spawn(process.execPath, [cli, '--config', job.configFile, 'worker'], { env: { ...process.env, TEMPORAL_ADDRESS: env.address, BACKUPCTL_LOG_LEVEL: 'WARN' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    try {
      await waitFor(() => stderr.includes('worker polling'), { timeoutMs: 60_000, description: `the worker (${stderr})` });
      expect(stderr).toContain(`schedule created: ${sid(job, 'nightly')} `);
      const metrics = await waitFor(async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return /temporal_\w+/.test(text) ? text : undefined;
      }, { timeoutMs: 30_000, description: 'the metrics endpoint' });
      expect(metrics).toMatch(/temporal_worker_task_slots_available|temporal_num_pollers|temporal_request/);
      // backupctl's own metrics and the live report, beside the SDK's: the next port.
      expect(stderr).toContain(`backup metrics on http://127.0.0.1:${port + 1}/metrics, report on http://127.0.0.1:${port + 1}/report`);
      const backups = await (await fetch(`http://127.0.0.1:${port + 1}/metrics`)).text();
      expect(backups).toMatch(/^backupctl_job_health\{job="app",state="(ok|warning|failing|stale)"\} 1$/m);
      expect(backups).toMatch(/^backupctl_freshness_threshold_seconds\{job="app",type="full"\} 90000$/m);
      const report = await fetch(`http://127.0.0.1:${port + 1}/report`);
      expect(report.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(await report.text()).toContain('<section class="job" data-job="app"');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await env.client.schedule.getHandle(sid(job, 'nightly')).delete().catch(() => undefined);
      await env.client.schedule.getHandle(sid(job, 'freshness').replace(':app:', ':')).delete().catch(() => undefined);
    }
  });

  it('an unknown job is a usage error (exit 2)', async () => {
    const job = await writeJob(env);
    const r = await backupctl(['--config', job.configFile, 'run', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no job named "nope" in the config \(jobs: app\)/);
  });
});


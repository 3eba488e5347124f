import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ScheduleNotFoundError, ScheduleOverlapPolicy, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { applySchedules, desiredSchedules } from '../../src/schedules/index.js';
import { BACKUP_WORKFLOW, FRESHNESS_WORKFLOW, backupWorkflowId, type BackupResult } from '../../src/contracts/index.js';
import { startHttpSink, type HttpSink } from '../helpers/http-sink.js';
import { backupResult, startBackup, waitForStep } from '../helpers/run-backup.js';
import { runCommand, waitFor } from '../helpers/util.js';
import { listFiles, signAsDeployment, startEnv, withWorker, writeJob, type Env, type JobSetup } from './fixture.js';

const cli = path.resolve(import.meta.dirname, '../../bin/backupctl.js');

let env: Env;
let http: HttpSink;
beforeAll(async () => { [env, http] = await Promise.all([startEnv(), startHttpSink()]); });
afterAll(async () => { await Promise.all([env?.close(), http?.stop()]); });

const backupctl = (job: JobSetup, args: string[]) => runCommand(process.execPath, [cli, '--config', job.configFile, ...args], { timeoutMs: 120_000, env: { ...process.env, TEMPORAL_ADDRESS: env.address } });

function rewrite(job: JobSetup, patch: (c: Record<string, any>) => void) { // eslint-disable-line @typescript-eslint/no-explicit-any
  patch(job.config);
  writeFileSync(job.configFile, stringify(job.config));
}

/** A schedule's ID: it carries the config's deployment (default: the config file's name and a hash of its path). */
const sid = (job: JobSetup, name: string) => `backupctl:${loadConfig(job.configFile).config.temporal.deployment}:app:${name}`;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function deleteSchedules(job: JobSetup) {
  const { config } = loadConfig(job.configFile);
  for (const d of desiredSchedules(config)) await env.client.schedule.getHandle(d.id).delete().catch(() => undefined);
}

/** [start of the dump, end of the finalize] of a run, from its history. */
async function busyInterval(h: WorkflowHandle): Promise<[number, number]> {
  const events = (await h.fetchHistory()).events ?? [];
  const byScheduled = new Map<string, string>();
  let start = Infinity, end = 0;
  const t = (e: (typeof events)[number]) => Number(e.eventTime!.seconds) * 1000 + Math.floor((e.eventTime!.nanos ?? 0) / 1e6);
  for (const e of events) {
    const sched = e.activityTaskScheduledEventAttributes;
    if (sched) byScheduled.set(String(e.eventId), sched.activityType!.name!);
    const started = e.activityTaskStartedEventAttributes;
    if (started && byScheduled.get(String(started.scheduledEventId)) === 'dump') start = Math.min(start, t(e));
    const done = e.activityTaskCompletedEventAttributes;
    if (done && byScheduled.get(String(done.scheduledEventId)) === 'finalize') end = Math.max(end, t(e));
  }
  return [start, end];
}

describe('schedules, one run per slot and per job, cancel, monitoring (Temporal dev server, OpenSSH, SMTP, HTTP)', () => {
  it('schedules apply: creates, is idempotent, deletes what the config dropped, recreates what was deleted by hand', async () => {
    const job = await writeJob(env, (c) => {
      c.jobs.app.schedules = [
        { name: 'full', type: 'full', calendar: { hour: [3, 11, 19], minute: 0 }, timezone: 'Europe/Berlin' },
        { name: 'diff', type: 'diff', cron: '0 */6 * * *', timezone: 'Europe/Berlin' },
      ];
    });
    try {
      const first = await backupctl(job, ['schedules', 'apply']);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toMatch(new RegExp(`^created +${esc(sid(job, 'full'))} `, 'm'));
      expect(first.stdout).toMatch(new RegExp(`^created +${esc(sid(job, 'diff'))} `, 'm'));
      expect(first.stdout).toMatch(new RegExp(`^created +${esc(sid(job, 'freshness').replace(':app:', ':'))}`, 'm'));
      const second = await backupctl(job, ['schedules', 'apply']);
      expect(second.stdout).not.toMatch(/^(created|updated|deleted)/m);
      expect(second.stdout).toMatch(/no changes/);
      // The full schedule fires at 03:00, 11:00 and 19:00 Berlin time.
      const d = await env.client.schedule.getHandle(sid(job, 'full')).describe();
      const hours = d.info.nextActionTimes.map((t) => Number(new Intl.DateTimeFormat('en-GB', { hour: 'numeric', timeZone: 'Europe/Berlin' }).format(t)));
      expect(new Set(hours)).toEqual(new Set([3, 11, 19]));
      expect(d.policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);

      // A changed spec is updated; a dropped schedule is deleted.
      rewrite(job, (c) => { c.jobs.app.schedules = [{ name: 'full', type: 'full', calendar: { hour: [2], minute: 30 }, timezone: 'Europe/Berlin' }]; });
      const third = await backupctl(job, ['schedules', 'apply']);
      expect(third.stdout).toMatch(new RegExp(`^updated +${esc(sid(job, 'full'))} `, 'm'));
      await waitFor(async () => {
        const out = (await backupctl(job, ['schedules', 'apply'])).stdout;
        return new RegExp(`^deleted +${esc(sid(job, 'diff'))}`, 'm').test(out) || /no changes/.test(out);
      }, { timeoutMs: 30_000, description: 'the dropped schedule to be deleted' });
      await expect(env.client.schedule.getHandle(sid(job, 'diff')).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);

      // Deleted by hand → recreated.
      await env.client.schedule.getHandle(sid(job, 'full')).delete();
      const fourth = await backupctl(job, ['schedules', 'apply']);
      expect(fourth.stdout).toMatch(new RegExp(`^created +${esc(sid(job, 'full'))} `, 'm'));
      const list = await backupctl(job, ['schedules', 'list']);
      expect(list.stdout).toMatch(new RegExp(`${esc(sid(job, 'full'))} {2}active\n.*\n {2}next: `));
    } finally {
      await deleteSchedules(job);
    }
  });

  it('the same slot started by three schedules at once → exactly one backup for the slot', async () => {
    const spec = { type: 'full', cron: '0 3 * * *', timezone: 'UTC' };
    const job = await writeJob(env, (c) => { c.jobs.app.schedules = [{ name: 'a', ...spec }, { name: 'b', ...spec }, { name: 'c', ...spec }]; });
    const { config } = loadConfig(job.configFile);
    await applySchedules(env.client, config);
    try {
      const slot = new Date('2024-06-01T03:00:00Z');
      // The ID the server gives each schedule's run of the slot, and `backupctl run --slot` too.
      const id = backupWorkflowId(job.deployment, 'app', 'full', slot);
      expect(id).toBe(`backup:${job.deployment}:app:full-2024-06-01T03:00:00Z`);
      await withWorker(env, job, async () => {
        await Promise.all(['a', 'b', 'c'].map((n) => env.client.schedule.getHandle(sid(job, n)).backfill({ start: new Date(slot.getTime() - 1000), end: new Date(slot.getTime() + 1000), overlap: ScheduleOverlapPolicy.ALLOW_ALL })));
        await waitFor(async () => {
          const runs = [];
          for await (const w of env.client.workflow.list({ query: `WorkflowId="${id}"` })) runs.push(w);
          return runs.length > 0 && runs.every((r) => r.status.name !== 'RUNNING') ? runs : undefined;
        }, { timeoutMs: 90_000, description: 'the slot to be done' });
        await new Promise((r) => setTimeout(r, 3000)); // let any late duplicate start
      });
      const runs = [];
      for await (const w of env.client.workflow.list({ query: `WorkflowId="${id}"` })) runs.push(w);
      const results = await Promise.all(runs.map((r) => env.client.workflow.getHandle(r.workflowId, r.runId).result().catch((e: unknown) => e) as Promise<BackupResult | { status: string }>));
      // One run stored the backup; any other start of the slot was refused by Temporal or skipped, visibly.
      expect(results.filter((r) => (r as BackupResult).status === 'succeeded')).toHaveLength(1);
      expect(results.every((r) => ['succeeded', 'skipped'].includes((r as { status: string }).status))).toBe(true);
      const stored = listFiles(env.sshd.root).filter((f) => f.includes('app-full-20240601T030000Z'));
      expect(stored.filter((f) => f.endsWith('.tar'))).toHaveLength(1);
      expect(stored.some((f) => f.endsWith('.tmp'))).toBe(false);
    } finally {
      await deleteSchedules(job);
    }
  });

  it('a full (schedule trigger) and a diff (temporal workflow start, another ID) of one job never dump or upload at the same time; both are reported', async () => {
    const job = await writeJob(env, (c) => {
      c.jobs.app.schedules = [{ name: 'full', type: 'full', cron: '0 3 1 1 *', timezone: 'UTC' }];
      c.destinations.nas.bandwidthLimit = '8MB';
    });
    writeFileSync(path.join(job.dataDir, 'random.bin'), randomBytes(12 * 1024 * 1024));
    const { config } = loadConfig(job.configFile);
    await applySchedules(env.client, config);
    try {
      const diffId = `manual-diff-${Date.now()}`;
      const handles = await withWorker(env, job, async () => {
        await env.client.schedule.getHandle(sid(job, 'full')).trigger(ScheduleOverlapPolicy.ALLOW_ALL);
        const r = await runCommand(inject('temporalCliPath'), ['workflow', 'start', '--address', env.address, '--type', BACKUP_WORKFLOW, '--task-queue', job.taskQueue, '--workflow-id', diffId, '--input', '{"job":"app","type":"diff"}'], { timeoutMs: 30_000 });
        expect(r.code, r.stderr).toBe(0);
        const full = await waitFor(async () => {
          for await (const w of env.client.workflow.list({ query: `TemporalScheduledById="${sid(job, 'full')}"` })) return env.client.workflow.getHandle(w.workflowId, w.runId);
          return undefined;
        }, { timeoutMs: 30_000, description: 'the triggered run' });
        const diff = env.client.workflow.getHandle(diffId);
        await Promise.all([full.result(), diff.result()]);
        return [full, diff];
      });
      const [a, b] = (await Promise.all(handles.map(busyInterval))) as [[number, number], [number, number]];
      expect(a[0]).toBeLessThan(a[1]);
      expect(b[0]).toBeLessThan(b[1]);
      expect(a[1] <= b[0] || b[1] <= a[0], `overlap: ${JSON.stringify([a, b])}`).toBe(true);
      const [fullResult, diffResult] = await Promise.all(handles.map((h) => h.result() as Promise<BackupResult>)) as [BackupResult, BackupResult];
      expect(fullResult.type).toBe('full');
      // Whichever got the lock first: a diff after the full is taken against it; a diff before it is taken against an
      // earlier full of the job on the destination (other tests of this file made some), or, without one, stores a full and says so.
      if (a[1] <= b[0]) expect(diffResult).toMatchObject({ type: 'diff', status: 'succeeded', base: { workflowId: handles[0]!.workflowId } });
      else if (diffResult.type === 'diff') expect(diffResult.base?.workflowId).not.toBe(handles[0]!.workflowId);
      else expect(diffResult).toMatchObject({ type: 'full', status: 'succeeded_with_warnings', warnings: [expect.stringMatching(/no usable full backup/)] });
      for (const h of handles) await env.smtp.waitFor((m) => m.text?.includes(h.workflowId) === true);
      // Filterable by job in visibility (and so in the Web UI and temporal workflow list --query).
      const listed = await runCommand(inject('temporalCliPath'), ['workflow', 'list', '--address', env.address, '--query', `BackupJob="app" AND BackupOutcome="${diffResult.status}" AND WorkflowId="${diffId}"`], { timeoutMs: 30_000 });
      expect(listed.stdout).toContain(diffId);
    } finally {
      await deleteSchedules(job);
    }
  });

  it('backupctl cancel <job> and the cancel signal both stop a run with cleanup and a "cancelled" mail', async () => {
    const job = await writeJob(env, (c) => { c.destinations.nas.bandwidthLimit = '4MB'; });
    writeFileSync(path.join(job.dataDir, 'random.bin'), randomBytes(24 * 1024 * 1024));
    for (const how of ['cli', 'signal'] as const) {
      const handle = await withWorker(env, job, async () => {
        const h = await startBackup(env.client, { taskQueue: job.taskQueue, workflowId: `cancel-${how}-${Date.now()}` });
        await waitFor(() => listFiles(env.sshd.root).find((f) => f.endsWith('.tmp') && f.includes(h.workflowId)), { timeoutMs: 60_000, description: 'the upload' });
        await waitForStep(h, 'upload');
        if (how === 'cli') {
          const r = await backupctl(job, ['cancel', 'app', '--wait']);
          expect(r.stdout).toContain(`cancellation requested for ${h.workflowId}`);
        } else {
          await h.signal('cancel', 'maintenance');
        }
        await h.result().catch(() => undefined);
        return h;
      });
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      if (how === 'cli') expect((await handle.describe()).status.name).toBe('CANCELLED');
      expect(listFiles(env.sshd.root).some((f) => f.includes(handle.workflowId))).toBe(false);
      expect(listFiles(path.join(job.stateDir, 'staging'))).toEqual([]);
      const mail = await env.smtp.waitFor((m) => m.text?.includes(handle.workflowId) === true);
      expect(mail.subject).toMatch(/CANCELLED: app full backup .* \(upload\)/);
    }
  });

  it('freshness: an old backup is stale (status and an alert), a paused or deleted schedule is notified', async () => {
    const share = path.join(env.tmp.path, 'fresh-share');
    const job = await writeJob(env, (c) => {
      c.destinations = { nas: { type: 'local', path: share } };
      c.jobs.app.schedules = [{ name: 'full', type: 'full', cron: '0 3 * * *', timezone: 'UTC' }, { name: 'diff', type: 'diff', cron: '0 */6 * * *', timezone: 'UTC' }];
      c.jobs.app.freshness = { full: '25h', diff: '7h' };
    });
    // A crafted finalized full backup from two days ago (no diff at all), instead of sleeping a day.
    const slot = new Date(Date.now() - 48 * 3_600_000);
    slot.setUTCMinutes(0, 0, 0);
    const stamp = slot.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    const p = (n: number) => String(n).padStart(2, '0');
    const dir = path.join(share, 'daily', String(slot.getUTCFullYear()), p(slot.getUTCMonth() + 1), p(slot.getUTCDate()), `${p(slot.getUTCHours())}00`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `app-full-${stamp}.tar`), 'x');
    writeFileSync(path.join(dir, `app-full-${stamp}.tar.manifest.json`), JSON.stringify({ format: 'backupctl-manifest/1', job: 'app', type: 'full', tier: 'daily', slot: slot.toISOString().replace(/\.\d{3}Z$/, 'Z'), workflowId: 'old-run', artifact: { name: `app-full-${stamp}.tar`, size: 1, sha256: 'f'.repeat(64) } }));
    signAsDeployment(env, path.join(dir, `app-full-${stamp}.tar.manifest.json`));
    const { config } = loadConfig(job.configFile);
    await applySchedules(env.client, config);
    try {
      await env.client.schedule.getHandle(sid(job, 'diff')).pause('maintenance window');
      const status = await backupctl(job, ['status', '--json']);
      expect(status.code).toBe(1);
      const s = JSON.parse(status.stdout) as { jobs: { health: string; problems: string[]; newest: Record<string, { path: string }> }[] };
      expect(s.jobs[0]!.health).toBe('stale');
      expect(s.jobs[0]!.newest.full!.path).toContain(`app-full-${stamp}.tar`);
      expect(s.jobs[0]!.problems.join('\n')).toMatch(/the newest full backup is 4\d(\.\d)? h old \(threshold 25 h\)/);
      expect(s.jobs[0]!.problems.join('\n')).toMatch(/no finalized diff backup found/);
      expect(s.jobs[0]!.problems.join('\n')).toContain(`schedule ${sid(job, 'diff')} is paused (maintenance window)`);
      // No worker has polled this job's queue yet (issue 18: a host whose worker is down is named).
      expect(s.jobs[0]!.problems.join('\n')).toContain(`no worker polls task queue "${job.taskQueue}"`);

      await env.client.schedule.getHandle(sid(job, 'diff')).delete();
      const report = await withWorker(env, job, () => env.client.workflow.execute(FRESHNESS_WORKFLOW, { taskQueue: job.taskQueue, workflowId: `freshness-${Date.now()}`, args: [] }));
      expect(report.notified).toEqual(['app:ops']);
      const alert = await env.smtp.waitFor((m) => m.subject?.startsWith('[backupctl] ALERT: app') === true && m.text?.includes(`app-full-${stamp}`) === true);
      expect(alert.text).toMatch(/the newest full backup is 4\d(\.\d)? h old/);
      expect(alert.text).toContain(`schedule ${sid(job, 'diff')} is missing on the Temporal server`);
      expect(alert.text).not.toMatch(/no worker polls/); // the check ran on the job's own worker
      const human = await backupctl(job, ['status']);
      expect(human.stdout).toMatch(/^app: STALE$/m);
      expect(readFileSync(path.join(dir, `app-full-${stamp}.tar`), 'utf8')).toBe('x'); // monitoring only reads
    } finally {
      await deleteSchedules(job);
    }
  });

  it('webhook and healthchecks pings carry the right payloads for start, success and fail; a webhook that is down does not fail the backup', async () => {
    http.reset();
    const job = await writeJob(env, (c) => {
      c.notifiers.hook = { type: 'webhook', url: `${http.url}/hook`, format: 'json', secret: { env: 'TEST_HOOK_SECRET' } };
      c.notifiers.slack = { type: 'webhook', url: `${http.url}/slack`, format: 'slack' };
      c.notifiers.hc = { type: 'healthchecks', baseUrl: `${http.url}/ping`, uuid: '5b2f7a2e-0d6c-4c33-9a4e-2b7f5f9e1a10' };
      c.notifiers.down = { type: 'webhook', url: 'http://127.0.0.1:9/unreachable' };
      c.jobs.app.notify = ['ops', 'hook', 'slack', 'hc', 'down'];
      c.settings.notifyTimeout = '5s';
    });
    process.env.TEST_HOOK_SECRET = 'hook-secret';
    const ok = await withWorker(env, job, () => backupResult(env.client, { taskQueue: job.taskQueue, workflowId: `hooks-ok-${Date.now()}` }));
    expect(ok.status).toBe('succeeded');
    const start = await http.waitFor((r) => r.path === '/ping/5b2f7a2e-0d6c-4c33-9a4e-2b7f5f9e1a10/start');
    const success = await http.waitFor((r) => r.path === '/ping/5b2f7a2e-0d6c-4c33-9a4e-2b7f5f9e1a10');
    expect(start.query.rid).toBe(success.query.rid);
    const hook = await http.waitFor((r) => r.path === '/hook');
    const body = JSON.parse(hook.body) as { kind: string; event: { result: BackupResult } };
    expect(body.kind).toBe('success');
    expect(body.event.result.sha256).toBe(ok.sha256);
    expect(hook.headers['x-backupctl-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
    const slack = await http.waitFor((r) => r.path === '/slack');
    expect((JSON.parse(slack.body) as { text: string }).text).toMatch(/OK: app full backup/);

    http.reset();
    const job2 = await writeJob(env, (c) => {
      Object.assign(c.notifiers, job.config.notifiers);
      c.jobs.app.notify = ['hook', 'hc'];
      c.jobs.app.sources[0].paths = ['/nonexistent/hook-test'];
    });
    const failed = await withWorker(env, job2, () => backupResult(env.client, { taskQueue: job2.taskQueue, workflowId: `hooks-fail-${Date.now()}` }).catch((e: unknown) => e));
    expect(failed).toBeInstanceOf(WorkflowFailedError);
    const fail = await http.waitFor((r) => r.path === '/ping/5b2f7a2e-0d6c-4c33-9a4e-2b7f5f9e1a10/fail');
    expect(fail.body).toMatch(/FAILED in the dump step/);
    const hookFail = await http.waitFor((r) => r.path === '/hook');
    expect((JSON.parse(hookFail.body) as { kind: string; event: { step: string; code: string } }).event).toMatchObject({ step: 'dump', code: 'SOURCE_UNREADABLE' });
  });
});

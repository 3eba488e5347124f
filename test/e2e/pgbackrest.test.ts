import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { FRESHNESS_WORKFLOW, PGBACKREST_DRILL_WORKFLOW, PGBACKREST_WORKFLOW, type PgbackrestDrillReport, type PgbackrestResult } from '../../src/contracts/index.js';
import { applySchedules } from '../../src/schedules/index.js';
import { startPgbackrestCluster, type PgbackrestCluster } from '../helpers/pgbackrest.js';
import { runCommand, waitFor } from '../helpers/util.js';
import { deleteSchedules as deleteJobSchedules, sid, trigger as triggerSchedule } from './pgbackrest-support.js';
import { startEnv, withWorker, writeJob, type Env, type JobSetup } from './fixture.js';

// pgBackRest jobs against a real PostgreSQL 15 cluster archiving into a posix repository with Debian's pgbackrest,
// the Temporal dev server and an SMTP sink. One cluster for the file; the test that breaks the WAL archive runs last.

const cli = path.resolve(import.meta.dirname, '../../bin/backupctl.js');
let env: Env;
let cluster: PgbackrestCluster;
beforeAll(async () => {
  [env, cluster] = await Promise.all([startEnv(), startPgbackrestCluster()]);
  await cluster.pg.createDatabase('shop');
  await cluster.pg.sql('CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 5000) g', 'shop');
}, 120_000);
afterAll(async () => { await Promise.all([env?.close(), cluster?.stop()]); });

const backupctl = (job: JobSetup, args: string[]) => runCommand(process.execPath, [cli, '--config', job.configFile, ...args], { timeoutMs: 120_000, env: { ...process.env, TEMPORAL_ADDRESS: env.address } });

/** A config with the `pg` job on the cluster (full daily, diff every 6 hours), mailing `ops`. */
function writePgJob(patch: (job: Record<string, unknown>) => void = () => undefined): Promise<JobSetup> {
  return writeJob(env, (c) => {
    const job: Record<string, unknown> = {
      ...cluster.job(), notify: ['ops'],
      schedules: [{ name: 'full', type: 'full', cron: '0 11 * * *' }, { name: 'diff', type: 'diff', cron: '0 5,17,23 * * *' }],
      drill: { enabled: false, check: { sql: 'SELECT count(*) FROM orders', database: 'shop' } },
    };
    patch(job);
    c.jobs = { pg: job };
  });
}

/** The shared helpers, bound to this file's env. */
const deleteSchedules = (job: JobSetup) => deleteJobSchedules(env, job);
const trigger = (scheduleId: string) => triggerSchedule(env, scheduleId);

/** The code and message a failed run ended with. */
async function failureOf(h: WorkflowHandle): Promise<{ code: string; message: string }> {
  const err = await h.result().then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  return { code: cause.type ?? '', message: cause.message };
}

/** [start, end] of each execution of an activity type in a run, from its history. */
async function activityIntervals(h: WorkflowHandle, type: string): Promise<[number, number][]> {
  const events = (await h.fetchHistory()).events ?? [];
  const t = (e: (typeof events)[number]) => Number(e.eventTime!.seconds) * 1000 + Math.floor((e.eventTime!.nanos ?? 0) / 1e6);
  const scheduled = new Map<string, string>();
  const started = new Map<string, number>();
  const out: [number, number][] = [];
  for (const e of events) {
    if (e.activityTaskScheduledEventAttributes) scheduled.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType!.name!);
    const s = e.activityTaskStartedEventAttributes;
    if (s && scheduled.get(String(s.scheduledEventId)) === type) started.set(String(s.scheduledEventId), t(e));
    const c = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
    if (c && scheduled.get(String(c.scheduledEventId)) === type) out.push([started.get(String(c.scheduledEventId))!, t(e)]);
  }
  return out;
}

describe('pgBackRest jobs: scheduled, locked, verified, watched (PostgreSQL 15, pgbackrest 2.45, Temporal, SMTP)', () => {
  it('a full and then a diff started by their schedules: both verified and mailed; status shows both with their ages', async () => {
    const job = await writePgJob();
    await applySchedules(env.client, loadConfig(job.configFile).config);
    try {
      const [full, diff] = await withWorker(env, job, async () => {
        const f = (await (await trigger(sid(job, 'full'))).result()) as PgbackrestResult;
        await cluster.pg.sql('INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(5001, 5100) g', 'shop');
        const d = (await (await trigger(sid(job, 'diff'))).result()) as PgbackrestResult;
        return [f, d];
      });
      const systemId = (await cluster.pg.sql('SELECT system_identifier FROM pg_control_system()')).trim();
      expect(BigInt(systemId)).toBeGreaterThan(2n ** 53n);
      expect(full).toMatchObject({ status: 'succeeded', kind: 'pgbackrest', job: 'pg', type: 'full' });
      expect(full.pgbackrest).toMatchObject({ stanza: 'main', type: 'full', systemId, check: { result: '5000' } });
      expect(full.pgbackrest.label).toMatch(/^\d{8}-\d{6}F$/);
      expect(full.pgbackrest.size).toBeGreaterThan(1_000_000);
      expect(full.pgbackrest.archiveRange.segments).toBeGreaterThan(0);
      expect(diff.pgbackrest).toMatchObject({ type: 'diff', check: { result: '5100' } });
      expect(diff.pgbackrest.label).toMatch(new RegExp(`^${full.pgbackrest.label}_\\d{8}-\\d{6}D$`));
      expect(diff.pgbackrest.delta).toBeLessThan(full.pgbackrest.delta);

      for (const r of [full, diff]) {
        const mail = await env.smtp.waitFor((m) => m.subject === `[backupctl] OK: pg ${r.type} backup ${r.pgbackrest.label} (pgBackRest)`);
        expect(mail.text).toContain(`Label:    ${r.pgbackrest.label} (${r.type})`);
        expect(mail.text).toMatch(/Size: +[\d.]+ [KMG]?i?B database, [\d.]+ [KMG]?i?B copied \(delta\)/);
        expect(mail.text).toContain(`WAL:      ${r.pgbackrest.archiveStart} to ${r.pgbackrest.archiveStop}`);
        expect(mail.text).toContain(`archive unbroken from ${r.pgbackrest.archiveRange.from} to ${r.pgbackrest.archiveRange.to}`);
        expect(mail.text).toMatch(/Duration: \d+ s/);
      }

      const status = await backupctl(job, ['status', '--json']);
      expect(status.code, `${status.stdout}${status.stderr}`).toBe(0);
      const s = (JSON.parse(status.stdout) as { jobs: { job: string; health: string; problems: string[]; pgbackrest: { backups: { type: string; label: string; ageMs: number }[]; wal: { segment: string; ageMs: number } } }[] }).jobs[0]!;
      expect(s).toMatchObject({ job: 'pg', health: 'ok', problems: [] });
      expect(s.pgbackrest.backups.map((b) => [b.type, b.label])).toEqual([['full', full.pgbackrest.label], ['diff', diff.pgbackrest.label]]);
      for (const b of s.pgbackrest.backups) expect(b.ageMs).toBeLessThan(5 * 60_000);
      expect(s.pgbackrest.wal.ageMs).toBeLessThan(5 * 60_000);
      const human = await backupctl(job, ['status']);
      expect(human.stdout).toMatch(new RegExp(`^ {2}newest full: ${full.pgbackrest.label} \\(0 h ago\\), .*stanza main$`, 'm'));
      expect(human.stdout).toMatch(new RegExp(`^ {2}newest diff: ${diff.pgbackrest.label} \\(0 h ago\\)`, 'm'));
      expect(human.stdout).toMatch(/^ {2}newest archived WAL: [0-9A-F]{24} \(0 h ago\)$/m);
    } finally {
      await deleteSchedules(job);
    }
  }, 180_000);

  it('a full and a diff started at once are serialized by the stanza lock: neither fails with pgBackRest\'s lock error', async () => {
    const job = await writePgJob();
    const start = (type: string) => env.client.workflow.start(PGBACKREST_WORKFLOW, { taskQueue: job.taskQueue, workflowId: `pg-${type}-${Date.now()}`, args: [{ job: 'pg', type }] });
    const [full, diff] = await withWorker(env, job, async () => {
      const handles = await Promise.all([start('full'), start('diff')]);
      const results = await Promise.all(handles.map((h) => h.result().then((r) => r as PgbackrestResult, (e: unknown) => e)));
      expect(results.map((r) => (r as PgbackrestResult).status)).toEqual(['succeeded', 'succeeded']);
      return handles;
    });
    const [a, b] = [(await activityIntervals(full, 'pgbackrestBackup'))[0]!, (await activityIntervals(diff, 'pgbackrestBackup'))[0]!];
    expect(a[1] <= b[0] || b[1] <= a[0], `backups overlapped: ${JSON.stringify([a, b])}`).toBe(true);
    expect(env.smtp.messages.some((m) => /unable to acquire lock|\[050\]/.test(`${m.subject}\n${m.text}`))).toBe(false);
  }, 180_000);

  it('a broken archive_command: preflight fails with pgBackRest\'s own message, and the failure is mailed', async () => {
    const job = await writePgJob();
    // Pushes to a stanza the repository does not have: every archive-push fails, and PostgreSQL keeps retrying.
    await cluster.setArchiveCommand(cluster.archiveCommand.replace('--stanza=main', '--stanza=elsewhere'));
    try {
      const h = await env.client.workflow.start(PGBACKREST_WORKFLOW, { taskQueue: job.taskQueue, workflowId: `pg-broken-${Date.now()}`, args: [{ job: 'pg', type: 'full' }] });
      const failure = await withWorker(env, job, () => failureOf(h));
      expect(failure.code).toBe('PGBACKREST_CHECK_FAILED');
      expect(failure.message).toMatch(/failed in the preflight step: pgbackrest check of stanza "main" exited \d+: ERROR: \[082\]: WAL segment [0-9A-F]{24} was not archived before the 5000ms timeout/);
      const mail = await env.smtp.waitFor((m) => m.subject?.startsWith('[backupctl] FAILED: pg full backup') === true && m.subject.endsWith('(preflight)'));
      expect(mail.text).toMatch(/ERROR: \[082\]: WAL segment [0-9A-F]{24} was not archived/);
      expect(mail.text).toContain('Code:     PGBACKREST_CHECK_FAILED');
    } finally {
      await cluster.setArchiveCommand(cluster.archiveCommand);
    }
  }, 180_000);

  it('a schedule deleted by hand is alerted and comes back; a backup older than its threshold alerts', async () => {
    const job = await writePgJob((j) => { j.freshness = { full: '2s', diff: '7h', wal: '1h' }; });
    const { config } = loadConfig(job.configFile);
    await applySchedules(env.client, config);
    try {
      await env.client.schedule.getHandle(sid(job, 'diff')).delete();
      await new Promise((r) => setTimeout(r, 2500));
      const report = await withWorker(env, job, () => env.client.workflow.execute(FRESHNESS_WORKFLOW, { taskQueue: job.taskQueue, workflowId: `freshness-pg-${Date.now()}`, args: [] }));
      expect(report.notified).toEqual(['pg:ops']);
      expect(report.jobs[0]!.health).toBe('stale');
      const alert = await env.smtp.waitFor((m) => m.subject?.startsWith('[backupctl] ALERT: pg') === true && (m.text ?? '').includes(`schedule ${sid(job, 'diff')} is missing`));
      expect(alert.text).toMatch(/the newest full backup is [\d.]+ h old \(threshold 0 h\): \d{8}-\d{6}F of stanza main/);
      const changes = await applySchedules(env.client, config);
      expect(changes.find((c) => c.id === sid(job, 'diff'))?.action).toBe('created');
      expect((await env.client.schedule.getHandle(sid(job, 'diff')).describe()).action).toMatchObject({ workflowType: PGBACKREST_WORKFLOW });
    } finally {
      await deleteSchedules(job);
    }
  }, 180_000);

  it('a drill restores the newest backup into a scratch server, gets the count(*) the primary had just after the backup, reports its RTO and leaves nothing behind', async () => {
    const job = await writePgJob((j) => { j.drill = { enabled: false, notifyOnSuccess: true, check: { sql: 'SELECT count(*) FROM orders', database: 'shop' } }; });
    const scratchHomes = () => readdirSync(os.tmpdir()).filter((f) => f.startsWith('backupctl-pgbr-drill-'));
    const homesBefore = scratchHomes();
    const { backup, report } = await withWorker(env, job, async () => {
      // `backupctl run` starts a pgBackRest job's run like any other's.
      const run = await backupctl(job, ['run', 'pg', '--type', 'diff', '--wait', '--json']);
      expect(run.code, run.stderr).toBe(0);
      const printed = JSON.parse(run.stdout) as { status: string; workflowId: string; label: string };
      expect(printed.status).toBe('succeeded');
      const b = (await env.client.workflow.getHandle(printed.workflowId).result()) as PgbackrestResult;
      expect(printed.label).toBe(b.pgbackrest.label);
      // Written after the backup: the restored copy (to the end of the backup) must not have these.
      await cluster.pg.sql('INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(100001, 100100) g', 'shop');
      const r = (await env.client.workflow.execute(PGBACKREST_DRILL_WORKFLOW, { taskQueue: job.taskQueue, workflowId: `drill-pg-${Date.now()}`, args: [{ job: 'pg' }] })) as PgbackrestDrillReport;
      return { backup: b, report: r };
    });
    const recorded = backup.pgbackrest.check!.result;
    expect(Number((await cluster.pg.sql('SELECT count(*) FROM orders', 'shop')).trim())).toBe(Number(recorded) + 100);
    expect(report).toMatchObject({ ok: true, job: 'pg', stanza: 'main', backup: { label: backup.pgbackrest.label, type: backup.pgbackrest.type, target: 'immediate' }, problems: [] });
    expect(report.checks).toContain(`SELECT count(*) FROM orders returned ${recorded} on the restored copy, as on the primary just after the backup (run ${backup.workflowId})`);
    expect(report.checks.join('\n')).toMatch(/the restored copy started \(PostgreSQL 15 on 127\.0\.0\.1:\d+\) and finished recovery/);
    expect(report.restoreMs).toBeGreaterThan(0);
    const mail = await env.smtp.waitFor((m) => m.subject === '[backupctl] DRILL OK: pg');
    expect(mail.text).toMatch(/Restore time \(measured RTO\): \d+ s/);
    expect(mail.text).toContain(`backup ${backup.pgbackrest.label} (${backup.pgbackrest.type}, target immediate)`);
    // Nothing left behind: no scratch data, no scratch home, no server.
    expect(scratchHomes()).toEqual(homesBefore);
    expect(existsSync(path.join(job.stateDir, 'drills'))).toBe(false);
    expect((await runCommand('pgrep', ['-f', 'backupctl-pgbr-drill-'])).code).toBe(1);
  }, 240_000);

  it('cancelling a run stops pgbackrest backup (SIGTERM), mails "cancelled", and releases the stanza lock', async () => {
    // A pgbackrest whose backup command hangs (a stand-in for a long backup); every other command is the real one.
    const wrapper = path.join(path.dirname(cluster.configFile), 'slow-pgbackrest');
    writeFileSync(wrapper, `#!/bin/sh\ncase " $* " in *" backup "*) exec sleep 117 ;; esac\nexec pgbackrest "$@"\n`, { mode: 0o755 });
    const job = await writePgJob((j) => { j.pgbackrest = wrapper; });
    const h = await env.client.workflow.start(PGBACKREST_WORKFLOW, { taskQueue: job.taskQueue, workflowId: `pg-cancel-${Date.now()}`, args: [{ job: 'pg', type: 'full' }] });
    await withWorker(env, job, async () => {
      await waitFor(async () => (await runCommand('pgrep', ['-f', 'sleep 117'])).code === 0, { timeoutMs: 60_000, description: 'the backup command to run' });
      const t0 = Date.now();
      await h.cancel();
      await expect(h.result()).rejects.toBeInstanceOf(WorkflowFailedError);
      expect(Date.now() - t0).toBeLessThan(20_000);
    });
    expect((await h.describe()).status.name).toBe('CANCELLED');
    expect((await runCommand('pgrep', ['-f', 'sleep 117'])).code).toBe(1);
    const mail = await env.smtp.waitFor((m) => m.subject?.startsWith('[backupctl] CANCELLED: pg full backup') === true && m.subject.endsWith('(backup)'));
    expect(mail.text).toContain('Backup CANCELLED during the backup step');
    // The lock was released: the next run of the stanza (the real pgbackrest again) goes through.
    delete (job.config.jobs as Record<string, Record<string, unknown>>).pg!.pgbackrest;
    writeFileSync(job.configFile, stringify(job.config));
    const next = await withWorker(env, job, () => env.client.workflow.execute(PGBACKREST_WORKFLOW, { taskQueue: job.taskQueue, workflowId: `pg-after-cancel-${Date.now()}`, args: [{ job: 'pg', type: 'full' }] })) as PgbackrestResult;
    expect(next.status).toBe('succeeded');
  }, 180_000);

  // Runs last: the archive keeps its gap.
  it('a deleted archived WAL segment: pgbackrest verify alone passes, the next run\'s continuity check fails naming it, and it is mailed', async () => {
    const job = await writePgJob();
    const info = JSON.parse((await cluster.pgbackrest(['info', '--output=json'])).stdout.replace(/("system-id":)(\d+)/, '$1"$2"')) as [{ backup: { archive: { start: string; stop: string }; type: string }[] }];
    const fulls = info[0].backup.filter((b) => b.type === 'full');
    const victim = fulls.at(-1)!.archive.start;
    const dir = path.join(cluster.repoPath, 'archive', 'main', '15-1', victim.slice(0, 16));
    const file = readdirSync(dir).find((f) => f.startsWith(`${victim}-`))!;
    rmSync(path.join(dir, file));
    const verify = await cluster.pgbackrest(['verify']);
    expect(verify.code, verify.stderr).toBe(0);
    const h = await env.client.workflow.start(PGBACKREST_WORKFLOW, { taskQueue: job.taskQueue, workflowId: `pg-gap-${Date.now()}`, args: [{ job: 'pg', type: 'diff' }] });
    const failure = await withWorker(env, job, () => failureOf(h));
    expect(failure.code).toBe('WAL_GAP');
    expect(failure.message).toContain(`failed in the verify step: WAL archive of stanza "main" has a gap: segment ${victim} is missing`);
    const mail = await env.smtp.waitFor((m) => m.subject?.startsWith('[backupctl] FAILED: pg diff backup') === true && m.subject.endsWith('(verify)'));
    expect(mail.text).toContain(`segment ${victim} is missing`);
    expect(mail.text).toContain('Code:     WAL_GAP');
  }, 180_000);
});

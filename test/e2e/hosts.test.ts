import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ScheduleNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Activities } from '../../src/activities/index.js';
import { loadConfig } from '../../src/config/load.js';
import { BACKUP_WORKFLOW, backupWorkflowId, lockWorkflowId, type BackupResult } from '../../src/contracts/index.js';
import { withClientAndWorker, type CreateOwnWorkers } from '../../src/cli/restore.js';
import { BackupError } from '../../src/errors.js';
import { createWorkers, runWorkers } from '../../src/runtime/worker.js';
import { applySchedules, desiredSchedules } from '../../src/schedules/index.js';
import { stagingDir } from '../../src/state/staging.js';
import { runBackup, startBackup } from '../helpers/run-backup.js';
import { runCommand, waitFor } from '../helpers/util.js';
import { startEnv, withWorker, writeJob, type Env, type JobSetup } from './fixture.js';

// Many hosts, one Temporal: each worker serves only its own queues; configs (deployments) never touch each other's
// schedules or locks; restore and drill never compete with a running worker; nobody waits forever for a worker.

const cli = path.resolve(import.meta.dirname, '../../bin/backupctl.js');
let env: Env;
beforeAll(async () => { env = await startEnv(); });
afterAll(async () => { await env?.close(); });

const backupctl = (configFile: string, args: string[]) => runCommand(process.execPath, [cli, '--config', configFile, ...args], { timeoutMs: 180_000, env: { ...process.env, TEMPORAL_ADDRESS: env.address } });

/** Who ran what, from a workflow's history: every activity (by type) and workflow task with its worker's identity. */
async function whoRan(h: WorkflowHandle): Promise<{ task: string; identity: string }[]> {
  const events = (await h.fetchHistory()).events ?? [];
  const types = new Map<string, string>();
  const out: { task: string; identity: string }[] = [];
  for (const e of events) {
    if (e.activityTaskScheduledEventAttributes) types.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
    if (e.activityTaskStartedEventAttributes) out.push({ task: types.get(String(e.activityTaskStartedEventAttributes.scheduledEventId)) ?? '?', identity: e.activityTaskStartedEventAttributes.identity ?? '' });
    if (e.workflowTaskStartedEventAttributes) out.push({ task: 'workflow task', identity: e.workflowTaskStartedEventAttributes.identity ?? '' });
  }
  return out;
}

async function everPickedUp(h: WorkflowHandle): Promise<boolean> {
  return ((await h.fetchHistory()).events ?? []).some((e) => e.workflowTaskStartedEventAttributes);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the config as a test wrote it
const loose = (j: JobSetup): Record<string, any> => j.config;
/** The task queue of a job `app` (its own `taskQueue`, else the config's). */
const queueOf = (j: JobSetup): string => loose(j).jobs.app.taskQueue ?? j.taskQueue;

const succeeded = (o: Awaited<ReturnType<typeof runBackup>>): BackupResult => {
  if (o.status !== 'completed') throw new Error(`run failed: ${o.failure.message}`);
  expect(o.result.status).toBe('succeeded');
  return o.result;
};

describe('many hosts, one Temporal', () => {
  it('a worker serves only its own queues: job A runs wholly on worker 1, job B on worker 2; with worker 2 stopped A runs and B waits', async () => {
    const base = await writeJob(env);
    const uniq = randomUUID().slice(0, 8);
    const db01 = `db01-${uniq}`, web01 = `web01-${uniq}`;
    const app = loose(base).jobs.app;
    const webData = path.join(path.dirname(base.configFile), 'web-data');
    mkdirSync(webData, { recursive: true });
    writeFileSync(path.join(webData, 'index.html'), '<h1>web</h1>\n');
    // One config for both hosts; each host keeps it in its own folder, so the relative stateDir is each host's own.
    const config = {
      ...loose(base), stateDir: 'state', temporal: { ...loose(base).temporal, deployment: `fleet-${uniq}` },
      jobs: {
        dbjob: { ...app, taskQueue: db01 },
        webjob: { ...app, taskQueue: web01, sources: [{ name: 'web-files', type: 'files', paths: [webData] }] },
      },
    };
    const hostFile = (n: number) => {
      const dir = path.join(path.dirname(base.configFile), `host${n}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'backup.yml'), stringify(config));
      return path.join(dir, 'backup.yml');
    };
    const files = [hostFile(1), hostFile(2)];
    const configs = files.map((f) => loadConfig(f).config);
    expect(configs[0]!.stateDir).not.toBe(configs[1]!.stateDir);
    // Where the run's staging is when its upload starts: on this worker's host, and not on the other's.
    const staging: { host: number; workflowId: string; here: boolean; there: boolean }[] = [];
    const start = (host: 1 | 2) => createWorkers({
      configFile: files[host - 1]!, connection: env.native, namespace: 'default', queues: [host === 1 ? db01 : web01], identity: `worker-${host === 1 ? 'db01' : 'web01'}`,
      activities: (a: Activities) => ({
        ...a,
        upload: async (i: Parameters<Activities['upload']>[0]) => {
          const workflowId = Context.current().info.workflowExecution!.workflowId;
          staging.push({ host, workflowId, here: existsSync(stagingDir(configs[host - 1]!, workflowId)), there: existsSync(stagingDir(configs[2 - host]!, workflowId)) });
          return a.upload(i);
        },
      }),
    });
    const w1 = await start(1);
    let w2 = await start(2);
    expect([w1.taskQueues, w2.taskQueues]).toEqual([[db01], [web01]]);
    const r1 = w1.workers[0]!.run();
    let r2 = w2.workers[0]!.run();
    try {
      const [a, b] = await Promise.all([
        runBackup(env.client, { taskQueue: db01, job: 'dbjob', slot: new Date('2025-03-01T03:00:00Z') }),
        runBackup(env.client, { taskQueue: web01, job: 'webjob', slot: new Date('2025-03-01T03:00:00Z') }),
      ]);
      succeeded(a);
      succeeded(b);
      for (const [o, identity] of [[a, 'worker-db01'], [b, 'worker-web01']] as const) {
        const ran = await whoRan(o.handle);
        expect(ran.map((r) => r.task)).toEqual(expect.arrayContaining(['dump', 'archive', 'upload', 'verify', 'finalize']));
        expect(ran.filter((r) => r.identity !== identity)).toEqual([]);
      }
      expect(staging.filter((s) => s.workflowId === a.handle.workflowId)).toEqual([{ host: 1, workflowId: a.handle.workflowId, here: true, there: false }]);
      expect(staging.filter((s) => s.workflowId === b.handle.workflowId)).toEqual([{ host: 2, workflowId: b.handle.workflowId, here: true, there: false }]);

      // Worker 2 stops: job B waits for it, job A still runs.
      w2.workers[0]!.shutdown();
      await r2;
      const waiting = await startBackup(env.client, { taskQueue: web01, job: 'webjob', slot: new Date('2025-03-02T03:00:00Z') });
      succeeded(await runBackup(env.client, { taskQueue: db01, job: 'dbjob', slot: new Date('2025-03-02T03:00:00Z') }));
      expect((await waiting.describe()).status.name).toBe('RUNNING');
      expect(await everPickedUp(waiting)).toBe(false);
      // Back again, worker 2 runs it.
      w2 = await start(2);
      r2 = w2.workers[0]!.run();
      const late = (await waiting.result()) as BackupResult;
      expect(late.status).toBe('succeeded');
      expect((await whoRan(waiting)).filter((r) => r.identity !== 'worker-web01')).toEqual([]);
    } finally {
      for (const w of [w1, w2]) if (w.workers[0]!.getState() === 'RUNNING') w.workers[0]!.shutdown();
      await Promise.all([r1, r2]);
      await w1.close();
    }
  });

  it('a worker refuses a queue its config does not use', async () => {
    const job = await writeJob(env);
    await expect(createWorkers({ configFile: job.configFile, connection: env.native, queues: ['nobody-uses-this'] })).rejects.toThrow(/task queue "nobody-uses-this" is not used by this config/);
  });

  it('deployments are isolated: applying B and starting B\'s worker leave A\'s schedules alone; A adopts its pre-deployment schedule once; runs never share a lock', async () => {
    const shared = `shared-${randomUUID().slice(0, 8)}`;
    const patch = (c: Record<string, any>) => { // eslint-disable-line @typescript-eslint/no-explicit-any
      // Both configs name the same default queue (the old ownership scope); each job has its own host queue.
      c.jobs.app.taskQueue = c.temporal.taskQueue;
      c.temporal.taskQueue = shared;
      c.jobs.app.schedules = [{ name: 'nightly', type: 'full', cron: '0 3 * * *', timezone: 'UTC' }];
    };
    const [A, B] = [await writeJob(env, patch), await writeJob(env, patch)];
    const [cfgA, cfgB] = [loadConfig(A.configFile).config, loadConfig(B.configFile).config];
    expect(cfgA.temporal.deployment).not.toBe(cfgB.temporal.deployment);
    const idsA = desiredSchedules(cfgA).map((d) => d.id);
    const idsB = desiredSchedules(cfgB).map((d) => d.id);
    expect(idsA.filter((id) => idsB.includes(id))).toEqual([]);
    // What an older backupctl made for config A: the ID without the deployment, owned by scope (default queue) only.
    const legacyId = 'backupctl-app-nightly';
    await env.client.schedule.getHandle(legacyId).delete().catch(() => undefined);
    await env.client.schedule.create({
      scheduleId: legacyId, spec: { cronExpressions: ['0 3 * * *'] },
      action: { type: 'startWorkflow', workflowType: BACKUP_WORKFLOW, taskQueue: queueOf(A), workflowId: 'backup-app-full', args: [{ job: 'app', type: 'full' }] },
      memo: { managedBy: 'backupctl', scope: shared, job: 'app' }, state: { paused: true, note: 'paused by hand' },
    });
    const snapshot = async (ids: string[]) => Promise.all(ids.map(async (id) => {
      const d = await env.client.schedule.getHandle(id).describe();
      return { id, memo: d.memo, spec: d.spec, paused: d.state.paused, note: d.state.note, action: d.action.type === 'startWorkflow' ? d.action.taskQueue : undefined };
    }));
    try {
      const first = await applySchedules(env.client, cfgA);
      const nightlyA = idsA.find((id) => id.endsWith(':nightly'))!;
      expect(first.find((c) => c.id === nightlyA)?.action).toBe('migrated');
      expect(first.filter((c) => c.action === 'deleted')).toEqual([]);
      await expect(env.client.schedule.getHandle(legacyId).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
      const before = await snapshot(idsA);
      expect(before.find((s) => s.id === nightlyA)).toMatchObject({ paused: true, note: 'paused by hand', memo: { deployment: cfgA.temporal.deployment } });

      const applied = await applySchedules(env.client, cfgB);
      expect(applied.map((c) => c.action).sort()).toEqual(idsB.map(() => 'created'));
      expect(await snapshot(idsA)).toEqual(before);
      // B's worker applies B's schedules when it starts: A's stay as they are.
      const controller = new AbortController();
      await runWorkers({ configFile: B.configFile, connection: env.native, namespace: 'default', applySchedules: true, signal: controller.signal, onReady: () => setTimeout(() => controller.abort(), 1000) });
      expect(await snapshot(idsA)).toEqual(before);
      expect((await applySchedules(env.client, cfgA)).map((c) => c.action)).toEqual(idsA.map(() => 'unchanged'));

      // Runs of both jobs `app` at once: each takes its own deployment's lock, so neither waits for the other.
      const slow = (a: Activities) => ({ ...a, dump: async (i: Parameters<Activities['dump']>[0]) => { await new Promise((r) => setTimeout(r, 3000)); return a.dump(i); } });
      // (Their slots differ: both configs store on the same destination, where a slot of job `app` is one file.)
      const runOf = (j: JobSetup, slot: Date) => runBackup(env.client, { taskQueue: queueOf(j), slot, deployment: j.deployment });
      const [ra, rb] = await withWorker(env, A, () => withWorker(env, B, () => Promise.all([runOf(A, new Date('2025-04-01T03:00:00Z')), runOf(B, new Date('2025-04-02T03:00:00Z'))]), slow), slow);
      succeeded(ra);
      succeeded(rb);
      const dumpWindow = async (h: WorkflowHandle) => {
        const events = (await h.fetchHistory()).events ?? [];
        const ms = (e: (typeof events)[number]) => Number(e.eventTime!.seconds) * 1000;
        return [ms(events.find((e) => e.activityTaskStartedEventAttributes && events.some((s) => String(s.eventId) === String(e.activityTaskStartedEventAttributes!.scheduledEventId) && s.activityTaskScheduledEventAttributes?.activityType?.name === 'dump'))!), ms(events.at(-1)!)];
      };
      const [wa, wb] = [await dumpWindow(ra.handle), await dumpWindow(rb.handle)];
      expect(wa[0]! < wb[1]! && wb[0]! < wa[1]!, `the two runs overlap: ${wa} ${wb}`).toBe(true);
      for (const [cfg, j] of [[cfgA, A], [cfgB, B]] as const) {
        const lock = await env.client.workflow.getHandle(lockWorkflowId('app', cfg.temporal.deployment!)).describe();
        expect(lock.taskQueue).toBe(queueOf(j));
      }
    } finally {
      for (const id of [...idsA, ...idsB, legacyId]) await env.client.schedule.getHandle(id).delete().catch(() => undefined);
    }
  });

  it('two deployments with a job of the same name run the same slot at once, each its own run: the run ID carries the deployment', async () => {
    // Each its own destination path (there a slot of job `app` is one file), and not the one the other tests here share.
    const [rootA, rootB] = ['a', 'b'].map((x) => path.join(env.sshd.root, `deployment-${x}-${randomUUID().slice(0, 8)}`)) as [string, string];
    mkdirSync(rootA);
    mkdirSync(rootB);
    const A = await writeJob(env, (c) => { c.destinations.nas.path = rootA; });
    const B = await writeJob(env, (c) => { c.destinations.nas.path = rootB; });
    expect(A.deployment).not.toBe(B.deployment);
    const slot = '2025-06-01T03:00:00Z';
    const run = (j: JobSetup) => backupctl(j.configFile, ['run', 'app', '--slot', slot, '--wait', '--json']);
    const [ra, rb] = await withWorker(env, A, () => withWorker(env, B, () => Promise.all([run(A), run(B)])));
    const outcome = (r: Awaited<ReturnType<typeof run>>) => {
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { status: string; workflowId: string; remotePath: string };
    };
    const [oa, ob] = [outcome(ra), outcome(rb)];
    expect(oa.workflowId).toBe(`backup:${A.deployment}:app:full-${slot}`);
    expect(ob.workflowId).toBe(`backup:${B.deployment}:app:full-${slot}`);
    expect(oa.workflowId).toBe(backupWorkflowId(A.deployment, 'app', 'full', new Date(slot)));
    expect(oa.status).toBe('succeeded');
    expect(ob.status).toBe('succeeded');
    expect(existsSync(path.join(rootA, oa.remotePath))).toBe(true);
    expect(existsSync(path.join(rootB, ob.remotePath))).toBe(true);
  });

  it('cancel and status name a job of their own config: another deployment\'s running job of the same name is neither shown nor cancelled', async () => {
    const [A, B] = [await writeJob(env), await writeJob(env)];
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const held = (a: Activities) => ({ ...a, dump: async (i: Parameters<Activities['dump']>[0]) => { await gate; return a.dump(i); } });
    await withWorker(env, B, async () => {
      const running = await startBackup(env.client, { taskQueue: B.taskQueue, slot: new Date('2025-07-01T03:00:00Z'), deployment: B.deployment });
      try {
        await waitFor(async () => {
          for await (const w of env.client.workflow.list({ query: `BackupJob="app" AND TaskQueue="${B.taskQueue}" AND ExecutionStatus="Running"` })) if (w.workflowId === running.workflowId) return true;
          return undefined;
        }, { timeoutMs: 30_000, description: 'B\'s run to be listed' });
        const runningOf = async (j: JobSetup) => {
          const r = await backupctl(j.configFile, ['status', 'app', '--json']);
          return (JSON.parse(r.stdout) as { jobs: { running: { workflowId: string }[] }[] }).jobs[0]!.running.map((x) => x.workflowId);
        };
        expect(await runningOf(A)).toEqual([]);
        expect(await runningOf(B)).toEqual([running.workflowId]);
        const c = await backupctl(A.configFile, ['cancel', 'app']);
        expect(c.code, c.stderr).toBe(0);
        expect(c.stdout).toContain('no running run of job app');
        expect((await running.describe()).status.name).toBe('RUNNING');
      } finally {
        await running.terminate('test done').catch(() => undefined);
        release();
      }
    }, held);
  });

  it('restore and drill never compete with a running worker: with one serving the job\'s queue they run on it, else on a private queue of their own', async () => {
    const job = await writeJob(env);
    const w = await createWorkers({ configFile: job.configFile, connection: env.native, namespace: 'default', identity: 'host-worker' });
    const running = w.workers[0]!.run();
    let restoreWf: string;
    try {
      succeeded(await runBackup(env.client, { taskQueue: job.taskQueue, slot: new Date('2025-05-01T03:00:00Z'), deployment: job.deployment }));
      const to = path.join(env.tmp.path, `restore-served-${randomUUID()}`);
      const r = await backupctl(job.configFile, ['restore', 'app', '--to', to]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`a worker serves task queue ${job.taskQueue} (host-worker)`);
      restoreWf = /^started (\S+)$/m.exec(r.stderr)![1]!;
      const h = env.client.workflow.getHandle(restoreWf);
      expect((await h.describe()).taskQueue).toBe(job.taskQueue);
      const ran = await whoRan(h);
      expect(ran.map((x) => x.task)).toEqual(expect.arrayContaining(['planRestore', 'fetchArtifact', 'unpackArtifacts']));
      expect(ran.filter((x) => x.identity !== 'host-worker')).toEqual([]);
      expect(existsSync(path.join(to, 'files', 'app-files'))).toBe(true);
      const d = await backupctl(job.configFile, ['drill', 'app', '--json']);
      expect(d.code, d.stderr).toBe(0);
      const drillWf = decodeURIComponent((JSON.parse(d.stdout) as { link: string }).link.split('/workflows/')[1]!);
      expect((await env.client.workflow.getHandle(drillWf).describe()).taskQueue).toBe(job.taskQueue);
      expect((await whoRan(env.client.workflow.getHandle(drillWf))).filter((x) => x.identity !== 'host-worker')).toEqual([]);
    } finally {
      w.workers[0]!.shutdown();
      await running;
      await w.close();
    }

    // No worker serves the job's queue (a queue nobody ever polled): the CLI's own worker runs the restore on a private
    // queue, and takes none of the job's other work (a backup waiting on the job's queue stays untouched).
    const other = await writeJob(env, (c) => { c.destinations = job.config.destinations; });
    const pending = await startBackup(env.client, { taskQueue: other.taskQueue, slot: new Date('2025-05-02T03:00:00Z') });
    try {
      const to = path.join(env.tmp.path, `restore-private-${randomUUID()}`);
      const r = await backupctl(other.configFile, ['restore', 'app', '--to', to, '--backup', backupWorkflowId(job.deployment, 'app', 'full', new Date('2025-05-01T03:00:00Z'))]);
      expect(r.code, r.stderr).toBe(0);
      const wf = /^started (\S+)$/m.exec(r.stderr)![1]!;
      expect((await env.client.workflow.getHandle(wf).describe()).taskQueue).toMatch(/^backupctl-cli-[0-9a-f-]{36}$/);
      expect(await everPickedUp(pending)).toBe(false);
    } finally {
      await pending.terminate('test done');
    }
  });

  it('the in-process worker failing while its workflow waits to be picked up: the command fails at once with NO_WORKER, naming the error, and the workflow is terminated', async () => {
    const job = await writeJob(env);
    // A stand-in for the SDK's worker that never polls, and fails half a second after the workflow was started.
    let die!: (err: Error) => void;
    const running = new Promise<void>((_, reject) => { die = reject; });
    const create: CreateOwnWorkers = () => Promise.resolve({ workers: [{ run: () => running, shutdown: () => undefined, getState: () => 'RUNNING' } as never], close: () => Promise.resolve() });
    const address = process.env.TEMPORAL_ADDRESS;
    process.env.TEMPORAL_ADDRESS = env.address;
    let started: WorkflowHandle | undefined;
    const t0 = Date.now();
    try {
      const outcome = await withClientAndWorker({ config: job.configFile, json: true, workerWaitMs: 30_000, createOwnWorkers: create }, `nobody-${randomUUID()}`, async ({ client, taskQueue, picked }) => {
        started = await client.workflow.start(BACKUP_WORKFLOW, { taskQueue, workflowId: `own-worker-dies-${randomUUID()}`, args: [{ job: 'app' }] });
        setTimeout(() => die(new Error('fatal: the namespace is gone')), 500);
        await picked(started);
        return 'picked up';
      }).catch((e: unknown) => e);
      expect(outcome).toBeInstanceOf(BackupError);
      expect((outcome as BackupError).code).toBe('NO_WORKER');
      expect((outcome as BackupError).message).toContain('the in-process worker failed: fatal: the namespace is gone');
      // Not the 30 s wait for a pickup that can no longer come.
      expect(Date.now() - t0).toBeLessThan(10_000);
      // (Asked through the test's client: the command closed its own.)
      expect((await env.client.workflow.getHandle(started!.workflowId).describe()).status.name).toBe('TERMINATED');
    } finally {
      if (address === undefined) delete process.env.TEMPORAL_ADDRESS;
      else process.env.TEMPORAL_ADDRESS = address;
    }
  });

  it('prune and --no-worker runs give up after a bounded wait, naming the queue nobody serves', async () => {
    const job = await writeJob(env);
    const started = Date.now();
    const p = await backupctl(job.configFile, ['prune', 'app', '--worker-wait', '3']);
    expect(p.code).toBe(1);
    expect(p.stderr).toContain(`no worker serves task queue "${job.taskQueue}"`);
    expect(Date.now() - started).toBeLessThan(60_000);
    const to = path.join(env.tmp.path, `no-worker-${randomUUID()}`);
    const r = await backupctl(job.configFile, ['restore', 'app', '--to', to, '--no-worker', '--worker-wait', '3']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no worker serves task queue "${job.taskQueue}"`);
    expect(existsSync(to)).toBe(false);
    // What was started is terminated, not left to run unattended whenever a worker appears.
    const terminated = await waitFor(async () => {
      const ids: string[] = [];
      for await (const x of env.client.workflow.list({ query: `TaskQueue="${job.taskQueue}" AND ExecutionStatus="Terminated"` })) ids.push(x.workflowId);
      return ids.length === 2 ? ids : undefined;
    }, { timeoutMs: 30_000, description: 'the prune and the restore to be terminated' });
    expect(terminated.map((id) => id.split(/[-:]/)[0]).sort()).toEqual(['prune', 'restore']);
  });
});

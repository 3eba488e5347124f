import { randomUUID } from 'node:crypto';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Activities } from '../../src/activities/index.js';
import { Context } from '@temporalio/activity';
import { BACKUP_WORKFLOW, LOCK_GRANTED_SIGNAL, type BackupEvent, type BackupResult, type Manifest, type RunPlan } from '../../src/contracts/index.js';
import { workflowBundle } from '../../src/runtime/bundle.js';
import { runBackup } from '../helpers/run-backup.js';

// Workflow tier: the real workflow on the dev server, with scripted activities, to pin down its decisions
// (re-upload bound, compensation scope, notification on every path) independent of the servers.

let client: Client;
let native: NativeConnection;
beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const address = inject('temporalAddress');
  client = new Client({ connection: await Connection.connect({ address }) });
  native = await NativeConnection.connect({ address });
});
afterAll(async () => {
  await client?.connection.close();
  await native?.close();
});

const plan = (destinations: string[]): RunPlan => ({
  job: 'app', type: 'full', tier: 'daily', slot: '2025-11-04T03:00:00Z', workflowId: 'w', artifactName: 'a.tar',
  sources: [{ name: 'files', type: 'files' }],
  destinations: destinations.map((name) => ({ name, type: 'sftp', dir: 'd', finalPath: `d/a.tar`, tempPath: `d/.a.tar.${name}.tmp`, manifestPath: 'd/a.tar.manifest.json' })),
  alreadyStored: [], notifiers: ['ops'], retries: 2, heartbeatTimeoutMs: 10_000, verifyAttempts: 2, notifyTimeoutMs: 3_000, warnings: [],
  resolved: RESOLVED,
});
const RESOLVED = { stateDir: '/var/lib/backupctl-test', jobs: { app: { destinations: ['nas'] } } };

interface Calls { upload: string[]; cleanup: unknown[]; events: BackupEvent[]; finalize: string[]; uploadInputs: { destination: string; sha256?: string }[]; manifests: Manifest[] }

function scripted(overrides: Partial<Record<keyof Activities, unknown>>, destinations = ['nas']): { activities: Activities; calls: Calls } {
  const calls: Calls = { upload: [], cleanup: [], events: [], finalize: [], uploadInputs: [], manifests: [] };
  const base = {
    preflight: async () => plan(destinations),
    dump: async () => ({ name: 'files', type: 'files', member: 'files.tar.zst', offset: 0, end: 1024, size: 100, warnings: [], stats: {}, bootId: 'b' }),
    archive: async () => ({ size: 2048, bootId: 'b', manifest: { artifact: { name: 'a.tar', size: 2048, format: 'tar' }, components: [{ name: 'files', type: 'files', member: 'files.tar.zst', size: 100, stats: {} }] } }),
    upload: async (i: { destination: string; sha256?: string }) => { calls.upload.push(i.destination); calls.uploadInputs.push(i); return { bytes: 2048, sha256: 'a'.repeat(64), durationMs: 1 }; },
    verify: async () => ({ size: 2048, sha256: 'a'.repeat(64), method: 'test' }),
    checksum: async () => ({ components: ['c'.repeat(64)] }),
    finalize: async (i: { destination: string; finalPath: string; manifest: Manifest }) => { calls.finalize.push(i.destination); calls.manifests.push(i.manifest); return { path: i.finalPath }; },
    cleanup: async (i: unknown) => { calls.cleanup.push(i); return { removed: [], problems: [] }; },
    notify: async (i: { event: BackupEvent }) => { calls.events.push(i.event); return { sent: true }; },
    notifiersOf: async () => ['ops'],
    checkSizes: async () => ({ warnings: [], history: 0 }),
    // The lock is granted at once (the real lock workflow is tested end to end).
    requestLock: async () => {
      const { workflowId, runId } = Context.current().info.workflowExecution!;
      await Context.current().client.workflow.getHandle(workflowId, runId).signal(LOCK_GRANTED_SIGNAL, { lock: 'test-lock' });
      return { lockWorkflowId: 'test-lock', waitMs: 60_000, notifiers: ['ops'], notifyTimeoutMs: 3_000 };
    },
  };
  const wrapped = Object.fromEntries(Object.entries({ ...base, ...overrides }).map(([k, fn]) => [k, fn])) as unknown as Activities;
  // Overrides see the same call log.
  for (const k of ['upload', 'cleanup', 'notify', 'finalize'] as const) {
    if (overrides[k]) {
      const o = overrides[k] as (i: never) => Promise<unknown>;
      const record = base[k] as (i: never) => Promise<unknown>;
      (wrapped as unknown as Record<string, unknown>)[k] = async (i: never) => { await record(i).catch(() => undefined); return o(i); };
    }
  }
  return { activities: wrapped, calls };
}

async function runWith(activities: Activities): Promise<{ result?: BackupResult; error?: WorkflowFailedError }> {
  const taskQueue = `wf-${randomUUID()}`;
  const worker = await Worker.create({ connection: native, taskQueue, activities, workflowBundle: await workflowBundle() });
  return worker.runUntil(async () => {
    const outcome = await runBackup(client, { taskQueue, workflowId: `wf-${randomUUID()}`, slot: new Date('2025-11-04T03:00:00Z') });
    return outcome.status === 'completed' ? { result: outcome.result } : { error: outcome.error };
  });
}

describe('backup workflow decisions', () => {
  it('a run is resolved once: every step after preflight is given the config preflight resolved; lock and preflight only the job name', async () => {
    const given: Record<string, unknown[]> = {};
    const spy = (name: string, fn: (i: never) => Promise<unknown>) => async (i: never) => {
      (given[name] ??= []).push((i as { resolved?: unknown }).resolved ?? 'none');
      return fn(i);
    };
    const { activities } = scripted({});
    const a = activities as unknown as Record<string, (i: never) => Promise<unknown>>;
    for (const name of ['requestLock', 'preflight', 'dump', 'checkSizes', 'archive', 'upload', 'checksum', 'verify', 'finalize', 'cleanup']) a[name] = spy(name, a[name]!);
    const { result } = await runWith(activities);
    expect(result?.status).toBe('succeeded');
    expect(given.requestLock).toEqual(['none']);
    expect(given.preflight).toEqual(['none']);
    for (const name of ['dump', 'checkSizes', 'archive', 'upload', 'checksum', 'verify', 'finalize', 'cleanup']) {
      expect(given[name], name).toEqual([RESOLVED]);
    }
  });

  it('with uploadWhileDumping the first upload starts beside the dump and follows it, without it only after archive; a dump that fails stops it before the cleanup', async () => {
    const order: string[] = [];
    const traced = (extra: Partial<Record<keyof Activities, unknown>> = {}) => {
      const { activities, calls } = scripted({
        preflight: async () => ({ ...plan(['nas']), uploadWhileDumping: true }),
        dump: async () => { order.push('dump start'); await new Promise((r) => setTimeout(r, 300)); order.push('dump end'); return { name: 'files', type: 'files', member: 'files.tar.zst', offset: 0, end: 1024, size: 100, warnings: [], stats: {}, bootId: 'b' }; },
        upload: async (i: { follow?: boolean }) => { order.push(i.follow ? 'upload (follow)' : 'upload'); return { bytes: 2048, sha256: 'a'.repeat(64), durationMs: 1 }; },
        ...extra,
      });
      return { activities, calls };
    };
    const first = traced();
    expect((await runWith(first.activities)).result?.status).toBe('succeeded');
    // Both start in one workflow task, in either order; the upload before the dump ends.
    expect([...order].sort()).toEqual(['dump end', 'dump start', 'upload (follow)']);
    expect(order.indexOf('upload (follow)')).toBeLessThan(order.indexOf('dump end'));
    expect(first.calls.upload).toEqual(['nas']);

    order.length = 0;
    const inTurn = traced({ preflight: async () => plan(['nas']) });
    expect((await runWith(inTurn.activities)).result?.status).toBe('succeeded');
    expect(order).toEqual(['dump start', 'dump end', 'upload']);

    // The dump fails: the following upload is cancelled and waited for, then the cleanup removes its temporary file.
    order.length = 0;
    const failing = traced({
      dump: async () => { order.push('dump start'); await new Promise((r) => setTimeout(r, 300)); throw ApplicationFailure.create({ type: 'SOURCE_UNREADABLE', message: 'gone', nonRetryable: true }); },
      upload: async () => {
        order.push('upload (follow)');
        const ctx = Context.current();
        for (;;) {
          try {
            await ctx.sleep(50);
            ctx.heartbeat();
          } catch (err) {
            order.push('upload stopped');
            throw err;
          }
        }
      },
      cleanup: async (i: unknown) => { order.push('cleanup'); return { removed: [], problems: [], i }; },
    });
    const { error } = await runWith(failing.activities);
    expect(error?.cause?.message).toMatch(/failed in the dump step: gone/);
    expect([...order.slice(0, 2)].sort()).toEqual(['dump start', 'upload (follow)']);
    expect(order.slice(2)).toEqual(['upload stopped', 'cleanup']);
    expect(failing.calls.cleanup).toEqual([expect.objectContaining({ temporary: [{ destination: 'nas', path: 'd/.a.tar.nas.tmp' }] })]);
  });

  it('a verify mismatch uploads again up to verifyAttempts, then fails; cleanup removes the temporary file; the failure is notified', async () => {
    const { activities, calls } = scripted({ verify: async () => { throw ApplicationFailure.create({ type: 'VERIFY_MISMATCH', message: 'mismatch', nonRetryable: true }); } });
    const { error } = await runWith(activities);
    expect(error?.cause?.message).toMatch(/failed in the verify step: mismatch/);
    expect(calls.upload).toEqual(['nas', 'nas']);
    expect(calls.finalize).toEqual([]);
    expect(calls.cleanup).toEqual([expect.objectContaining({ temporary: [{ destination: 'nas', path: 'd/.a.tar.nas.tmp' }] })]);
    expect(calls.events).toEqual([expect.objectContaining({ kind: 'start' }), expect.objectContaining({ kind: 'failure', step: 'verify', code: 'VERIFY_MISMATCH' })]);
  });

  it('a failing cleanup does not stop the failure notification, which mentions it', async () => {
    const { activities, calls } = scripted({
      dump: async () => { throw ApplicationFailure.create({ type: 'SOURCE_UNREADABLE', message: 'cannot stat', nonRetryable: true }); },
      cleanup: async () => { throw ApplicationFailure.create({ type: 'DESTINATION_IO', message: 'cleanup broke', nonRetryable: true }); },
    });
    const { error } = await runWith(activities);
    expect(error?.cause?.message).toMatch(/dump step: cannot stat/);
    expect(calls.events.map((e) => e.kind)).toEqual(['start', 'failure']);
    expect((calls.events[1] as { error: string }).error).toMatch(/cannot stat\n\(cleanup also failed: cleanup broke\)/);
  });

  it('a notifier that keeps failing never changes a successful outcome', async () => {
    const { activities } = scripted({ notify: async () => { throw ApplicationFailure.create({ type: 'NOTIFY_FAILED', message: 'smtp down' }); } });
    const { result, error } = await runWith(activities);
    expect(error).toBeUndefined();
    expect(result?.status).toBe('succeeded');
  });

  it('a notifier that keeps failing never turns a failure into anything else', async () => {
    const { activities } = scripted({
      upload: async () => { throw ApplicationFailure.create({ type: 'DESTINATION_SPACE', message: 'remote disk is full', nonRetryable: true }); },
      notify: async () => { throw ApplicationFailure.create({ type: 'NOTIFY_FAILED', message: 'smtp down' }); },
    });
    const { error } = await runWith(activities);
    expect(error?.cause?.message).toMatch(/upload step: remote disk is full/);
    expect((error?.cause as ApplicationFailure).type).toBe('DESTINATION_SPACE');
  });

  it('with two destinations, a failure on the second keeps the first finalized backup and removes only the second temporary file', async () => {
    const { activities, calls } = scripted({
      upload: async (i: { destination: string }) => {
        if (i.destination === 'offsite') throw ApplicationFailure.create({ type: 'DESTINATION_AUTH', message: 'auth failed', nonRetryable: true });
        return { bytes: 2048, sha256: 'a'.repeat(64), durationMs: 1 };
      },
    }, ['nas', 'offsite']);
    const { error } = await runWith(activities);
    expect(error?.cause?.message).toMatch(/upload step: auth failed/);
    expect(calls.finalize).toEqual(['nas']);
    expect(calls.cleanup).toEqual([expect.objectContaining({ temporary: [{ destination: 'offsite', path: 'd/.a.tar.offsite.tmp' }] })]);
    expect(calls.events[1]).toMatchObject({ kind: 'failure', finalized: [{ destination: 'nas', path: 'd/a.tar' }] });
  });

  it('retention after a successful run: a failing prune is reported as a warning and never turns the backup into a failure', async () => {
    const { activities, calls } = scripted({
      preflight: async () => ({ ...plan(['nas']), prune: true }),
      prune: async () => { throw ApplicationFailure.create({ type: 'DESTINATION_AUTH', message: 'prune could not log in', nonRetryable: true }); },
    });
    const { result, error } = await runWith(activities);
    expect(error).toBeUndefined();
    expect(result?.status).toBe('succeeded_with_warnings');
    expect(result?.warnings.join('\n')).toMatch(/retention failed \(the backup itself succeeded\): prune could not log in/);
    expect(calls.events.at(-1)).toMatchObject({ kind: 'success' });
  });

  it('retention after a successful run: what prune removed is in the result', async () => {
    const { activities } = scripted({
      preflight: async () => ({ ...plan(['nas']), prune: true }),
      prune: async () => ({ job: 'app', dryRun: false, destinations: [{ destination: 'nas', kept: [], removed: ['daily/old.tar'], leftAlone: [], problems: [] }], orphans: [], staging: [], problems: [] }),
    });
    const { result } = await runWith(activities);
    expect(result).toMatchObject({ status: 'succeeded', pruned: ['nas:daily/old.tar'] });
  });

  it('transient failures are retried with backoff and the attempts are reported', async () => {
    let n = 0;
    const { activities, calls } = scripted({ upload: async () => { n++; throw ApplicationFailure.create({ type: 'DESTINATION_UNREACHABLE', message: 'connection lost' }); } });
    const { error } = await runWith(activities);
    expect(n).toBe(2); // plan.retries
    expect(error?.cause?.message).toMatch(/upload step after 2 attempts: connection lost/);
    expect(calls.events[1]).toMatchObject({ attempts: 2, code: 'DESTINATION_UNREACHABLE' });
  });

  it('the manifest carries the hash the first upload sent and the checksum step\'s component hashes; a second destination must send the same bytes', async () => {
    const { activities, calls } = scripted({}, ['nas', 'offsite']);
    const { result, error } = await runWith(activities);
    expect(error).toBeUndefined();
    expect(result).toMatchObject({ status: 'succeeded', sha256: 'a'.repeat(64) });
    expect(calls.uploadInputs.map((i) => [i.destination, i.sha256])).toEqual([['nas', undefined], ['offsite', 'a'.repeat(64)]]);
    expect(calls.manifests).toHaveLength(2);
    for (const m of calls.manifests) {
      expect(m.artifact.sha256).toBe('a'.repeat(64));
      expect(m.components.map((c) => c.sha256)).toEqual(['c'.repeat(64)]);
    }
  });

  it('a checksum step that fails stops the run before anything is finalized, and the failure is notified', async () => {
    const { activities, calls } = scripted({
      checksum: async () => { throw ApplicationFailure.create({ type: 'STAGING_LOST', message: 'staged before a restart', nonRetryable: true }); },
    });
    const { error } = await runWith(activities);
    expect(error?.cause?.message).toMatch(/checksum step: staged before a restart/);
    expect(calls.finalize).toEqual([]);
    expect(calls.cleanup).toEqual([expect.objectContaining({ temporary: [{ destination: 'nas', path: 'd/.a.tar.nas.tmp' }] })]);
    expect(calls.events.at(-1)).toMatchObject({ kind: 'failure', step: 'checksum', code: 'STAGING_LOST' });
  });

  it('input that is not a job is refused without running anything', async () => {
    const { activities, calls } = scripted({});
    const taskQueue = `wf-${randomUUID()}`;
    const worker = await Worker.create({ connection: native, taskQueue, activities, workflowBundle: await workflowBundle() });
    const err = await worker.runUntil(client.workflow.execute(BACKUP_WORKFLOW, { taskQueue, workflowId: `wf-${randomUUID()}`, args: [{ jb: 'x' } as never] }).catch((e: unknown) => e));
    expect((err as WorkflowFailedError).cause?.message).toMatch(/input must be a JSON object with a "job" name/);
    expect(calls.upload).toEqual([]);
  });

  it('a tier that is no name, a slot more than five minutes ahead of workflow time, and a workflow ID "." or ".." are refused (CONFIG_INVALID, not retried) before any step', async () => {
    const { activities, calls } = scripted({});
    const requested: unknown[] = [];
    activities.requestLock = (async (i: unknown) => { requested.push(i); throw new Error('must not be called'); }) as never;
    const taskQueue = `wf-${randomUUID()}`;
    const worker = await Worker.create({ connection: native, taskQueue, activities, workflowBundle: await workflowBundle() });
    const soon = new Date(Date.now() + 60 * 60_000).toISOString();
    const cases: [string, Record<string, unknown>, RegExp][] = [
      [`wf-${randomUUID()}`, { job: 'app', tier: '../../../etc/cron.d' }, /tier "\.\.\/\.\.\/\.\.\/etc\/cron\.d" is not a valid name/],
      [`wf-${randomUUID()}`, { job: 'app', tier: 'a/b' }, /tier "a\/b" is not a valid name/],
      [`wf-${randomUUID()}`, { job: 'app', slot: '2099-01-01T03:00:00Z' }, /slot 2099-01-01T03:00:00Z is in the future/],
      [`wf-${randomUUID()}`, { job: 'app', slot: soon }, /is in the future \(now is .*; at most 5 minutes ahead are accepted\)/],
      ['..', { job: 'app' }, /workflow ID "\.\." cannot name a folder/],
      ['.', { job: 'app' }, /workflow ID "\." cannot name a folder/],
    ];
    await worker.runUntil(async () => {
      for (const [workflowId, input, message] of cases) {
        const err = await client.workflow.execute(BACKUP_WORKFLOW, { taskQueue, workflowId, args: [input as never] }).catch((e: unknown) => e);
        expect(err, JSON.stringify(input)).toBeInstanceOf(WorkflowFailedError);
        const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
        expect(cause.message).toMatch(message);
        expect(cause).toMatchObject({ type: 'CONFIG_INVALID', nonRetryable: true });
      }
    });
    expect(requested).toEqual([]);
    expect(calls.upload).toEqual([]);
  });
});

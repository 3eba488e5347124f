import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { isRunning } from '../../src/activities/lock.js';
import { ACQUIRE_SIGNAL, JOB_LOCK_WORKFLOW } from '../../src/contracts/lock.js';
import { workflowBundle } from '../../src/runtime/bundle.js';
import type { LockState } from '../../src/workflows/lock.js';

// Workflow tier: the real job lock workflow and its real `isRunning` activity on the dev server. A holder that can no
// longer release the lock (terminated, or unknown to the server) is released within a minute and the next run is granted.

let client: Client;
let native: NativeConnection;
let worker: Worker;
let running: Promise<void>;
const taskQueue = `lock-${randomUUID()}`;
beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const address = inject('temporalAddress');
  client = new Client({ connection: await Connection.connect({ address }) });
  native = await NativeConnection.connect({ address });
  worker = await Worker.create({ connection: native, taskQueue, activities: { isRunning: isRunning() }, workflowBundle: await workflowBundle() });
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await client?.connection.close();
  await native?.close();
});

/** A stand-in for a backup run: any running workflow can hold the lock (here an idle lock workflow of another job). */
async function startRun(name: string) {
  const h = await client.workflow.start(JOB_LOCK_WORKFLOW, { taskQueue, workflowId: `${name}-${randomUUID()}`, args: [{ job: name }] });
  return { handle: h, request: { workflowId: h.workflowId, runId: h.firstExecutionRunId } };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe.concurrent('job lock: a holder that cannot release is released within a minute', () => {
  it('a TERMINATED holder', async () => {
    const lockId = `backup-lock-test-${randomUUID()}`;
    const first = await startRun('first');
    const next = await startRun('next');
    const lock = await client.workflow.signalWithStart(JOB_LOCK_WORKFLOW, { taskQueue, workflowId: lockId, args: [{ job: 'app' }], signal: ACQUIRE_SIGNAL, signalArgs: [first.request] });
    await waitFor('the first run to hold the lock', async () => ((await lock.query<LockState>('state')).holder?.workflowId === first.request.workflowId ? true : undefined), 20_000);
    await lock.signal(ACQUIRE_SIGNAL, next.request);
    await first.handle.terminate('test: the holder is killed without releasing');
    const terminatedAt = Date.now();
    const state = await waitFor('the next run to be granted', async () => {
      const s = await lock.query<LockState>('state');
      return s.holder?.workflowId === next.request.workflowId ? s : undefined;
    }, 90_000);
    expect(Date.now() - terminatedAt).toBeLessThan(75_000);
    expect(state.queue).toEqual([]);
    await Promise.all([lock.terminate(), next.handle.terminate()]);
  }, 120_000);

  it('a holder the server does not know (NotFound)', async () => {
    const lockId = `backup-lock-test-${randomUUID()}`;
    const next = await startRun('next');
    const gone = { workflowId: `gone-${randomUUID()}`, runId: randomUUID(), since: Date.now() };
    // As after a continue-as-new whose holder's history has since been removed by the namespace's retention.
    const lock = await client.workflow.start(JOB_LOCK_WORKFLOW, { taskQueue, workflowId: lockId, args: [{ job: 'app', state: { holder: gone, queue: [next.request] } }] });
    const startedAt = Date.now();
    expect((await lock.query<LockState>('state')).holder?.workflowId).toBe(gone.workflowId);
    const state = await waitFor('the next run to be granted', async () => {
      const s = await lock.query<LockState>('state');
      return s.holder?.workflowId === next.request.workflowId ? s : undefined;
    }, 90_000);
    expect(Date.now() - startedAt).toBeLessThan(75_000);
    expect(state.queue).toEqual([]);
    await Promise.all([lock.terminate(), next.handle.terminate()]);
  }, 120_000);
});

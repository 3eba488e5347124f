import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupWorkflowId } from '../../src/contracts/index.js';
import { closeDestinations } from '../../src/destinations/index.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { s3IncompleteUploads, s3Keys, s3Object, startS3Proxy, type S3ProxyHandle } from '../helpers/s3proxy.js';
import { LogBuffer, runCommand, waitFor } from '../helpers/util.js';
import { startEnv, withWorker, writeJob, type Env, type JobSetup } from '../e2e/fixture.js';
import { assertInvariant, failureMessage, nextSlot, outcomeOf, runToOutcome, snapshot, startRun, title, type Remote } from './support.js';

// The fault scenarios that make sense for S3, against s3proxy through the fault proxy: a connection cut during the
// part uploads, the server down for the retry budget, the worker killed mid-upload, three starts of one slot, a byte
// flipped on the way. Every outcome is checked by the same invariant as the SFTP scenarios, plus: no incomplete
// multipart upload is left once the run ends.

const PREFIX = 'faults';
const DATA = 12 * 1024 * 1024;
const cli = path.resolve(import.meta.dirname, '../../bin/backupctl.js');
const faultWorker = path.join(import.meta.dirname, 'fault-worker.mjs');
let env: Env;
let s3: S3ProxyHandle;
let proxy: FaultProxy;
let client: S3Client;

beforeAll(async () => {
  [env, s3] = await Promise.all([startEnv(), startS3Proxy()]);
  proxy = await startFaultProxy({ host: s3.host, port: s3.port });
  process.env.TEST_S3_KEY = s3.accessKeyId;
  process.env.TEST_S3_SECRET = s3.secretAccessKey;
  client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
});
afterAll(async () => {
  await closeDestinations();
  client?.destroy();
  await proxy?.stop();
  await Promise.all([env?.close(), s3?.stop()]);
});

/** The bucket as the invariant sees a destination: keys under the prefix, their SHA-256, their text. */
const remote: Remote = {
  list: () => s3Keys(client, s3.bucket, PREFIX),
  async sha256(rel) {
    return createHash('sha256').update(await s3Object(client, s3.bucket, PREFIX, rel)).digest('hex');
  },
  read: async (rel) => (await s3Object(client, s3.bucket, PREFIX, rel)).toString(),
};

const incompleteUploads = () => s3IncompleteUploads(client, s3.bucket, PREFIX);

/** A job backing up 12 MiB of incompressible data to the bucket through the fault proxy (parts of 5 MiB). */
async function s3Job(patch: (c: Record<string, any>) => void = () => undefined): Promise<JobSetup> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const job = await writeJob(env, (c) => {
    c.destinations.nas = {
      type: 's3', bucket: s3.bucket, prefix: PREFIX, endpoint: `http://127.0.0.1:${proxy.port}`, forcePathStyle: true,
      accessKeyId: { env: 'TEST_S3_KEY' }, secretAccessKey: { env: 'TEST_S3_SECRET' }, partSize: '5MiB', parallelParts: 2,
    };
    c.settings.heartbeatTimeout = '5s';
    patch(c);
  });
  writeFileSync(path.join(job.dataDir, 'random.bin'), randomBytes(DATA));
  await closeDestinations();
  return job;
}

const attemptsOf = async (handle: { fetchHistory(): Promise<{ events?: unknown[] | null }> }, activity: string): Promise<number[]> => {
  const events = ((await handle.fetchHistory()).events ?? []) as { eventId?: { toString(): string }; activityTaskScheduledEventAttributes?: { activityType?: { name?: string } }; activityTaskStartedEventAttributes?: { scheduledEventId?: { toString(): string }; attempt?: number } }[];
  return events.filter((e) => e.activityTaskStartedEventAttributes && events.find((s) => s.eventId?.toString() === e.activityTaskStartedEventAttributes!.scheduledEventId?.toString())?.activityTaskScheduledEventAttributes?.activityType?.name === activity)
    .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
};

describe('fault injection: S3 (s3proxy through the fault proxy)', () => {
  it(title('s3-cut'), async () => {
    const job = await s3Job();
    const before = await snapshot(remote);
    proxy.arm({ kind: 'cut', afterBytes: 3 * 1024 * 1024 });
    const struck = proxy.struck();
    const { handle, outcome } = await runToOutcome(env, job);
    expect((await struck).kind).toBe('cut');
    await assertInvariant({ id: 's3-cut', handle, outcome, remotes: [remote], before: [before], smtp: env.smtp, job });
    expect(await incompleteUploads()).toEqual([]);
  });

  it(title('s3-flip'), async () => {
    const job = await s3Job();
    const before = await snapshot(remote);
    // A byte in the middle of the first part's body: the server recomputes the part's SHA-256 and answers BadDigest.
    proxy.arm({ kind: 'flip', afterBytes: 2 * 1024 * 1024 });
    const struck = proxy.struck();
    const { handle, outcome } = await runToOutcome(env, job);
    expect((await struck).kind).toBe('flip');
    const observed = await assertInvariant({ id: 's3-flip', handle, outcome, remotes: [remote], before: [before], smtp: env.smtp, job });
    // The damaged part was refused and the upload sent again: never a success with a bad object.
    expect(Math.max(...(await attemptsOf(handle, 'upload'))), observed).toBeGreaterThan(1);
    expect(await incompleteUploads()).toEqual([]);
  });

  it(title('s3-down'), async () => {
    const job = await s3Job((c) => { c.settings.retries = 3; });
    const before = await snapshot(remote);
    proxy.setDown(true);
    try {
      const { handle, outcome } = await runToOutcome(env, job);
      await assertInvariant({ id: 's3-down', handle, outcome, remotes: [remote], before: [before], smtp: env.smtp, job });
      expect(failureMessage(outcome)).toMatch(/failed in the preflight step after 3 attempts: destination "nas" .*cannot reach bucket/s);
      expect(failureMessage(outcome)).toMatch(/DESTINATION_UNREACHABLE|ECONNRESET|socket hang up|ECONNREFUSED/);
    } finally {
      proxy.setDown(false);
    }
  });

  it(title('s3-kill-upload'), async () => {
    const job = await s3Job((c) => { c.destinations.nas.bandwidthLimit = '3MB'; c.settings.heartbeatTimeout = '3s'; });
    const before = await snapshot(remote);
    const spawnWorker = () => {
      const logs = new LogBuffer();
      const child: ChildProcess = spawn(process.execPath, [faultWorker, job.configFile], { env: { ...process.env, TEMPORAL_ADDRESS: env.address }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      child.stderr!.on('data', (d: Buffer) => logs.append(d));
      return { child, logs };
    };
    const stop = async (w: { child: ChildProcess }, signal: NodeJS.Signals) => {
      if (w.child.exitCode !== null || w.child.signalCode !== null) return;
      const exited = new Promise((r) => w.child.once('exit', r));
      try { process.kill(-w.child.pid!, signal); } catch { /* gone */ }
      await exited;
    };
    const first = spawnWorker();
    const handle = await startRun(env, job, nextSlot());
    let second: ReturnType<typeof spawnWorker> | undefined;
    try {
      // Killed while its multipart upload is under way.
      await waitFor(async () => (await incompleteUploads()).length > 0, { timeoutMs: 90_000, intervalMs: 50, description: `the upload under way (${first.logs.toString()})` });
      await stop(first, 'SIGKILL');
      second = spawnWorker();
      const outcome = await outcomeOf(handle);
      await assertInvariant({ id: 's3-kill-upload', handle, outcome, remotes: [remote], before: [before], smtp: env.smtp, job });
      // The killed attempt's multipart upload was aborted by the retried upload (or the compensation): none is left.
      expect(await incompleteUploads()).toEqual([]);
    } finally {
      await stop(first, 'SIGKILL');
      if (second) await stop(second, 'SIGTERM');
    }
  });

  it(title('s3-same-slot-x3'), async () => {
    const job = await s3Job();
    const before = await snapshot(remote);
    const slot = nextSlot();
    const workflowId = backupWorkflowId(job.deployment, 'app', 'full', slot);
    const results = await withWorker(env, job, () => Promise.all([1, 2, 3].map(() => runCommand(process.execPath, [cli, '--config', job.configFile, 'run', 'app', '--slot', slot.toISOString(), '--wait'], { env: { ...process.env, TEMPORAL_ADDRESS: env.address }, timeoutMs: 90_000 }))));
    expect(results.filter((r) => r.code === 0), results.map((r) => r.stderr).join('\n')).toHaveLength(1);
    for (const r of results.filter((x) => x.code !== 0)) expect(r.stderr).toContain('already exists');
    const handle = env.client.workflow.getHandle(workflowId);
    await assertInvariant({ id: 's3-same-slot-x3', handle, outcome: await outcomeOf(handle), remotes: [remote], before: [before], smtp: env.smtp, job });
    expect(await incompleteUploads()).toEqual([]);
  });
});

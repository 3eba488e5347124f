import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeDestinations } from '../../src/destinations/index.js';
import { startSshd, type SshdHandle } from '../helpers/sshd.js';
import { LogBuffer, runCommand, waitFor } from '../helpers/util.js';
import { startEnv, writeJob, type Env, type JobSetup } from '../e2e/fixture.js';
import { assertInvariant, runToOutcome, failureMessage, localRemote, namespaceRemote, outcomeOf, snapshot, startRun, title } from './support.js';

const repo = path.resolve(import.meta.dirname, '../..');
const cli = path.join(repo, 'bin', 'backupctl.js');

let env: Env;
let small: SshdHandle;
beforeAll(async () => {
  env = await startEnv();
  // The remote disk: an 8 MiB tmpfs, visible only in sshd's own mount namespace.
  small = await startSshd({ tmpfsSize: '8m' });
  // An earlier backup on it, which no failure may touch.
  const dir = path.join(small.root, 'daily/2025/01/01/0300');
  const r = await small.inNamespace(['sh', '-c', `mkdir -p '${dir}' && head -c 524288 /dev/urandom > '${dir}/app-full-20250101T030000Z.tar' && echo '{}' > '${dir}/app-full-20250101T030000Z.tar.manifest.json'`]);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(async () => {
  await closeDestinations();
  await small?.stop();
  await env?.close();
});

/** A job backing up `mib` MiB of incompressible data to the tmpfs-backed sshd. */
async function jobOnSmallDisk(mib: number, patch: (c: Record<string, any>) => void = () => undefined): Promise<JobSetup> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const job = await writeJob(env, (c) => {
    Object.assign(c.destinations.nas, { port: small.port, privateKey: small.clientKeyPath, hostKey: small.hostKeyFingerprint, path: small.root });
    patch(c);
  });
  writeFileSync(path.join(job.dataDir, 'random.bin'), randomBytes(mib * 1024 * 1024));
  return job;
}

/** The last backup was small (1 MiB): the data grew since, so preflight's estimate lets the run start. */
function recordSmallLastBackup(job: JobSetup) {
  mkdirSync(path.join(job.stateDir, 'last'), { recursive: true });
  writeFileSync(path.join(job.stateDir, 'last', 'app.json'), JSON.stringify({ artifact: { size: 1024 * 1024 } }));
}

async function scheduledActivities(handle: { fetchHistory(): Promise<{ events?: { activityTaskScheduledEventAttributes?: { activityType?: { name?: string | null } | null } | null }[] | null }> }) {
  const h = await handle.fetchHistory();
  return (h.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
}

describe('fault injection: disks that fill up', () => {
  it(title('remote-full-upload'), async () => {
    const job = await jobOnSmallDisk(12);
    recordSmallLastBackup(job);
    const remote = namespaceRemote(small);
    const before = await snapshot(remote);
    const { handle, outcome } = await runToOutcome(env, job);
    await assertInvariant({ id: 'remote-full-upload', handle, outcome, remotes: [remote], before: [before], smtp: env.smtp, job });
    const message = failureMessage(outcome);
    expect(message).toMatch(/failed in the upload step: destination "nas" .*: the remote disk is full while writing .*\.tmp/s);
    expect((outcome.status !== 'completed' && (outcome.error.cause as { type?: string }).type)).toBe('DESTINATION_SPACE');
    // Permanent: not retried.
    expect((await scheduledActivities(handle)).filter((n) => n === 'upload')).toHaveLength(1);
    const mail = env.smtp.messages.find((m) => m.text?.includes(handle.workflowId));
    expect(mail?.text).toContain('remote disk is full');
  });

  it(title('remote-full-preflight'), async () => {
    const job = await jobOnSmallDisk(12);
    const remote = namespaceRemote(small);
    const before = await snapshot(remote);
    const { handle, outcome } = await runToOutcome(env, job);
    await assertInvariant({ id: 'remote-full-preflight', handle, outcome, remotes: [remote], before: [before], smtp: env.smtp, job });
    expect(failureMessage(outcome)).toMatch(/failed in the preflight step: not enough space on destination "nas" \(sftp:.*\): [\d.]+ MiB free, 14\.\d MiB needed/);
    expect(await scheduledActivities(handle)).not.toContain('dump');
  });

  // Encrypted, the component is written by age (after zstd): the full disk stops age first, and it must still be named.
  it.each([['', false], [' (encrypted: age writes the component)', true]] as const)(`${title('staging-full')}%s`, async (_suffix, encrypted) => {
    const recipient = encrypted ? (await runCommand('sh', ['-c', 'age-keygen 2>/dev/null | age-keygen -y'])).stdout.trim() : undefined;
    const job = await writeJob(env, (c) => { if (recipient) c.encryption = { recipients: [recipient] }; });
    writeFileSync(path.join(job.dataDir, 'random.bin'), randomBytes(12 * 1024 * 1024));
    recordSmallLastBackup(job);
    const staging = path.join(job.stateDir, 'staging');
    mkdirSync(staging, { recursive: true });
    // The worker runs in its own mount namespace, where its staging folder is a 4 MiB tmpfs.
    const logs = new LogBuffer();
    const worker: ChildProcess = spawn('unshare', ['-m', '--propagation', 'private', '--', 'sh', '-c',
      'mount -t tmpfs -o size=4m backupctl-test-staging "$1" && exec "$2" "$3" --config "$4" worker', 'sh', staging, process.execPath, cli, job.configFile], {
      env: { ...process.env, TEMPORAL_ADDRESS: env.address, BACKUPCTL_LOG_LEVEL: 'WARN' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    worker.stderr!.on('data', (d: Buffer) => logs.append(d));
    const inWorkerNs = async () => {
      const r = await runCommand('nsenter', ['-t', String(worker.pid), '-m', '--', 'find', staging, '-mindepth', '1'], { timeoutMs: 10_000 });
      if (r.code !== 0) throw new Error(r.stderr);
      return r.stdout.split('\n').filter(Boolean).map((f) => path.relative(staging, f));
    };
    try {
      await waitFor(async () => (await runCommand('nsenter', ['-t', String(worker.pid), '-m', '--', 'findmnt', '-n', staging])).stdout.includes('tmpfs'), { timeoutMs: 20_000, description: `the worker's staging tmpfs (${logs.toString()})` });
      const remote = localRemote(env.sshd.root);
      const before = await snapshot(remote);
      const handle = await startRun(env, job);
      // Bounded below the test's timeout, so that a run that never ends says where it stands and what the worker said
      // (it ended once, in CI, only at the 120 s test timeout, with nothing to go on).
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([outcomeOf(handle), new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          void handle.describe().then((d) => JSON.stringify({ status: d.status.name, pending: d.raw.pendingActivities?.map((a) => ({ type: a.activityType?.name, attempt: a.attempt, state: a.state, lastFailure: a.lastFailure?.message })) }), (e: unknown) => String(e))
            .then((state) => reject(new Error(`the run did not end within 90 s: ${state}; worker ${worker.exitCode === null ? 'running' : `exited ${worker.exitCode}`}, its stderr: ${logs.toString().slice(-3000)}`)));
        }, 90_000);
      })]).finally(() => clearTimeout(timer));
      await assertInvariant({ id: 'staging-full', handle, outcome, remotes: [remote], before: [before], smtp: env.smtp, job, staging: inWorkerNs });
      expect(failureMessage(outcome)).toMatch(/failed in the dump step: the staging disk filled up while dumping source "app-files" into .*staging/);
      expect(outcome.status !== 'completed' && (outcome.error.cause as { type?: string }).type).toBe('STAGING_SPACE');
      expect(await inWorkerNs()).toEqual([]);
    } finally {
      worker.kill('SIGKILL');
    }
  });
});

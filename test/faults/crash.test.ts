import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LogBuffer, waitFor } from '../helpers/util.js';
import { startEnv, writeJob, type Env, type JobSetup } from '../e2e/fixture.js';
import { assertInvariant, localRemote, nextSlot, outcomeOf, snapshot, startRun, title, type Outcome, type ScenarioId } from './support.js';

const faultWorker = path.join(import.meta.dirname, 'fault-worker.mjs');

let env: Env;
beforeAll(async () => { env = await startEnv(); });
afterAll(async () => { await env?.close(); });

interface Spawned { child: ChildProcess; logs: LogBuffer }

function spawnWorker(job: JobSetup, faults: Record<string, string> = {}): Spawned {
  const logs = new LogBuffer();
  // Its own process group: SIGKILL takes tar, zstd and the rest of the worker's children with it.
  const child = spawn(process.execPath, [faultWorker, job.configFile], {
    env: { ...process.env, TEMPORAL_ADDRESS: env.address, ...faults }, stdio: ['ignore', 'ignore', 'pipe'], detached: true,
  });
  child.stderr!.on('data', (d: Buffer) => logs.append(d));
  return { child, logs };
}

async function stopWorker(w: Spawned, signal: NodeJS.Signals) {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  const exited = new Promise((r) => w.child.once('exit', r));
  try { process.kill(-w.child.pid!, signal); } catch { /* gone */ }
  await exited;
}

/**
 * Starts a run on a worker with a fault point, waits until the fault point is reached, SIGKILLs the worker, starts a
 * plain one and lets the run end.
 */
async function crash(id: ScenarioId, job: JobSetup, opts: { faults?: Record<string, string>; reached: (workflowId: string) => boolean | Promise<boolean> }) {
  const remote = localRemote(env.sshd.root);
  const before = await snapshot(remote);
  const first = spawnWorker(job, opts.faults);
  const handle = await startRun(env, job, nextSlot());
  let second: Spawned | undefined;
  try {
    await waitFor(() => opts.reached(handle.workflowId), { timeoutMs: 90_000, intervalMs: 20, description: `the fault point of ${id} (${first.logs.toString()})` });
    await stopWorker(first, 'SIGKILL');
    const killedAt = Date.now();
    second = spawnWorker(job);
    const outcome: Outcome = await outcomeOf(handle);
    const observed = await assertInvariant({ id, handle, outcome, remotes: [remote], before: [before], smtp: env.smtp, job, note: `ended ${Date.now() - killedAt} ms after the kill` });
    return { handle, outcome, observed, killedAt };
  } finally {
    await stopWorker(first, 'SIGKILL');
    if (second) await stopWorker(second, 'SIGTERM');
  }
}

const artifactOf = (job: JobSetup, workflowId: string) => path.join(job.stateDir, 'staging', workflowId, 'artifact.tar');

describe('fault injection: the worker is killed (SIGKILL) and a new one started', () => {
  // With the steps in turn, and with the upload following the dump (the worker then dies with both under way).
  for (const overlap of [false, true]) {
    const mode = overlap ? ' [upload following the dump]' : '';
    it(`${title('kill-dump')}${mode}`, async () => {
      // A source that writes 3 MB, then takes a while: the worker dies with the dump half done.
      const job = await writeJob(env, (c) => {
        c.settings.heartbeatTimeout = '3s';
        c.settings.uploadWhileDumping = overlap;
        c.jobs.app.sources = [{ name: 'slow-dump', type: 'command', command: ['sh', '-c', 'head -c 3000000 /dev/urandom; sleep 3; head -c 3000000 /dev/urandom'], compress: false }];
      });
      const { outcome } = await crash('kill-dump', job, {
        // Following the dump, the upload is under way too: its temporary file is on the server.
        reached: (wid) => existsSync(artifactOf(job, wid)) && statSync(artifactOf(job, wid)).size > 1024 * 1024
          && (!overlap || listTmp(env.sshd.root).some((f) => f.includes(wid))),
      });
      if (outcome.status === 'completed') expect(outcome.result.size).toBeGreaterThan(6_000_000);
    });

    it(`${title('kill-upload')}${mode}`, async () => {
      const job = await writeJob(env, (c) => { c.destinations.nas.bandwidthLimit = '4MB'; c.settings.heartbeatTimeout = '3s'; c.settings.uploadWhileDumping = overlap; });
      writeFileSync(path.join(job.dataDir, 'random.bin'), randomBytes(12 * 1024 * 1024));
      await crash('kill-upload', job, {
        reached: (wid) => {
          const dir = env.sshd.root;
          const found = listTmp(dir).find((f) => f.includes(wid));
          return found !== undefined && statSync(path.join(dir, found)).size > 3 * 1024 * 1024;
        },
      });
    });
  }

  it(title('kill-verify-finalize'), async () => {
    const job = await writeJob(env, (c) => { c.settings.heartbeatTimeout = '3s'; });
    const marker = path.join(job.stateDir, '..', 'fault-marker');
    const { handle } = await crash('kill-verify-finalize', job, {
      faults: { FAULT_PAUSE_BEFORE: 'finalize', FAULT_MARKER: marker },
      reached: () => existsSync(marker),
    });
    expect(readFileSync(marker, 'utf8')).toBe('before finalize');
    const history = await handle.fetchHistory();
    expect(history.events?.some((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1)).toBe(true);
  });

  it(title('kill-notify'), async () => {
    const job = await writeJob(env, (c) => {
      c.settings.heartbeatTimeout = '3s';
      c.notifiers.ops.onSuccess = true;
      // A component of its own: against the larger ones of the runs above, its size would be an anomaly, and the mail
      // a warning rather than an OK.
      c.jobs.app.sources[0].name = 'notified-files';
    });
    const marker = path.join(job.stateDir, '..', 'fault-marker');
    const { handle, killedAt } = await crash('kill-notify', job, {
      faults: { FAULT_PAUSE_AFTER: 'notify', FAULT_MARKER: marker },
      reached: () => existsSync(marker),
    });
    // The message was sent, the worker died before Temporal heard of it: it is sent again, with the same
    // Message-ID (derived from the workflow ID and the event), so that receivers can tell it is the same message.
    const mails = env.smtp.messages.filter((m) => m.text?.includes(handle.workflowId) && /\] OK:/.test(m.subject ?? ''));
    expect(mails.length).toBe(2);
    expect(new Set(mails.map((m) => m.messageId)).size).toBe(1);
    expect(mails[0]!.messageId).toMatch(/^<[0-9a-f]{32}@backupctl>$/);
    // Resent after the heartbeat timeout (and a new worker's start), not after the notify step's 2 min start-to-close.
    expect(Date.now() - killedAt).toBeLessThan(60_000);
  });
});

function listTmp(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.tmp')) out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out;
}

import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeDestinations } from '../../src/destinations/index.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { sleep, waitFor } from '../helpers/util.js';
import { startEnv, withWorker, writeJob, type Env } from '../e2e/fixture.js';
import { assertInvariant, runToOutcome, failureMessage, localRemote, outcomeOf, snapshot, startRun, title, type ScenarioId } from './support.js';

let env: Env;
let proxy: FaultProxy;
beforeAll(async () => {
  env = await startEnv();
  proxy = await startFaultProxy({ host: env.sshd.host, port: env.sshd.port });
});
afterAll(async () => {
  await closeDestinations();
  await proxy?.stop();
  await env?.close();
});

const DATA = 6 * 1024 * 1024;

/**
 * A job whose destination is reached through the fault proxy; 6 MiB of incompressible data. `overlap`: the upload
 * follows the dump (settings.uploadWhileDumping), so that the fault meets the upload while the dump still runs.
 */
async function proxiedJob(overlap: boolean, patch: (c: Record<string, any>) => void = () => undefined) { // eslint-disable-line @typescript-eslint/no-explicit-any
  const job = await writeJob(env, (c) => {
    c.destinations.nas.port = proxy.port;
    c.settings.heartbeatTimeout = '4s';
    c.settings.uploadWhileDumping = overlap;
    patch(c);
  });
  writeFileSync(path.join(job.dataDir, 'random.bin'), randomBytes(DATA));
  // Each scenario starts from a fresh SSH connection, so that the fault strikes this run's connection.
  await closeDestinations();
  return job;
}

describe('fault injection: the network between the worker and the SFTP server', () => {
  it(title('sshd-down'), async () => {
    // Straight to sshd (no proxy): the port refuses connections while it is down.
    const job = await proxiedJob(false, (c) => { c.settings.retries = 3; c.destinations.nas.port = env.sshd.port; });
    const remote = localRemote(env.sshd.root);
    const before = await snapshot(remote);
    await env.sshd.down();
    try {
      const { handle, outcome } = await runToOutcome(env, job);
      await assertInvariant({ id: 'sshd-down', handle, outcome, remotes: [remote], before: [before], smtp: env.smtp, job });
      const message = failureMessage(outcome);
      expect(message).toMatch(/failed in the preflight step after 3 attempts: destination "nas" .*cannot connect: .*ECONNREFUSED/s);
      const mail = env.smtp.messages.find((m) => m.text?.includes(handle.workflowId));
      expect(mail?.text).toContain('Attempts: 3');
    } finally {
      await env.sshd.up();
    }
  });

  // The faults that strike the upload, with the steps in turn and with the upload following the dump.
  for (const overlap of [false, true]) {
    const mode = overlap ? ' [upload following the dump]' : '';
    for (const [id, pct] of [['cut-10', 0.1], ['cut-50', 0.5], ['cut-99', 0.99]] as [ScenarioId, number][]) {
      it(`${title(id)}${mode}`, async () => {
        const job = await proxiedJob(overlap);
        const remote = localRemote(env.sshd.root);
        const before = await snapshot(remote);
        proxy.arm({ kind: 'cut', afterBytes: Math.round(DATA * pct) });
        const struck = proxy.struck();
        const { handle, outcome } = await withWorker(env, job, async () => {
          const h = await startRun(env, job);
          const o = await outcomeOf(h);
          return { handle: h, outcome: o };
        });
        const e = await struck;
        expect(e.atBytes).toBe(Math.round(DATA * pct));
        const observed = await assertInvariant({ id, handle, outcome, remotes: [remote], before: [before], smtp: env.smtp, job });
        // The cut really hit the upload: it was retried.
        const history = await handle.fetchHistory();
        const uploads = history.events?.filter((ev) => ev.activityTaskStartedEventAttributes && history.events?.find((s) => s.eventId?.toString() === ev.activityTaskStartedEventAttributes?.scheduledEventId?.toString())?.activityTaskScheduledEventAttributes?.activityType?.name === 'upload');
        expect(uploads?.some((u) => (u.activityTaskStartedEventAttributes?.attempt ?? 1) > 1), observed).toBe(true);
      });
    }

    it(`${title('stall')}${mode}`, async () => {
      const job = await proxiedJob(overlap);
      const remote = localRemote(env.sshd.root);
      const before = await snapshot(remote);
      proxy.arm({ kind: 'stall', afterBytes: Math.round(DATA * 0.5) });
      const struck = proxy.struck();
      const started = Date.now();
      const { handle, outcome, detectedMs } = await withWorker(env, job, async () => {
        const h = await startRun(env, job);
        const e = await struck;
        const o = await outcomeOf(h);
        return { handle: h, outcome: o, detectedMs: Date.now() - e.at };
      });
      proxy.release();
      const observed = await assertInvariant({ id: 'stall', handle, outcome, remotes: [remote], before: [before], smtp: env.smtp, job, note: `finished ${detectedMs} ms after the stall` });
      // Detected by the 4 s heartbeat timeout, retried after 2 s: well within 30 s, not after SSH keepalives (45 s+).
      const history = await handle.fetchHistory();
      const timedOut = history.events?.some((ev) => ev.activityTaskStartedEventAttributes && (ev.activityTaskStartedEventAttributes.attempt ?? 1) > 1);
      expect(timedOut, observed).toBe(true);
      expect(detectedMs, `run took ${Date.now() - started} ms`).toBeLessThan(30_000);
    });

    it(`${title('sshd-down-upload')}${mode}`, async () => {
      const job = await proxiedJob(overlap, (c) => { c.settings.retries = 3; c.destinations.nas.port = env.sshd.port; c.destinations.nas.bandwidthLimit = '2MB'; });
      const remote = localRemote(env.sshd.root);
      const before = await snapshot(remote);
      let upAt = 0;
      const { handle, outcome } = await withWorker(env, job, async () => {
        const h = await startRun(env, job);
        // The upload is under way, its temporary file on the server: the server goes away.
        await waitFor(async () => (await remote.list()).some((f) => f.endsWith('.tmp') && f.includes(h.workflowId)), { timeoutMs: 60_000, intervalMs: 50, description: 'the upload to be under way' });
        await env.sshd.down();
        // Down through the upload's retries (2 s + 4 s), the compensation's first cleanup, and longer than the
        // 30 s that cleanup used to be retried for; then back.
        await sleep(40_000);
        await env.sshd.up();
        upAt = Date.now();
        return { handle: h, outcome: await outcomeOf(h) };
      });
      // (b) in the end: the temporary file was removed once the server was back.
      await assertInvariant({ id: 'sshd-down-upload', handle, outcome, remotes: [remote], before: [before], smtp: env.smtp, job, note: `run ended ${Date.now() - upAt} ms after sshd was back` });
      // Following the dump, the server may go away before the dump's size check, which reads earlier manifests there.
      const step = overlap ? '(upload|dump)' : 'upload';
      expect(failureMessage(outcome)).toMatch(new RegExp(`failed in the ${step} step after 3 attempts: destination "nas" .*(cannot connect|connection lost)`, 's'));
      // The mail, sent while the server was still away, does not claim the temporary file was removed.
      const mail = env.smtp.messages.find((m) => m.text?.includes(handle.workflowId))!;
      expect(mail.text).not.toContain('Temporary files and local staging were removed');
      expect(mail.text).toMatch(/could not be removed yet.*\.tmp/s);
    }, 180_000);
  }
});

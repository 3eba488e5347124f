import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupWorkflowId, type Manifest } from '../../src/contracts/index.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { startHttpSink } from '../helpers/http-sink.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { runCommand, sleep } from '../helpers/util.js';
import { startEnv, withWorker, writeJob, type Env } from '../e2e/fixture.js';
import { assertInvariant, runToOutcome, failureMessage, localRemote, nextSlot, outcomeOf, snapshot, startRun, title } from './support.js';

const repo = path.resolve(import.meta.dirname, '../..');
const cli = path.join(repo, 'bin', 'backupctl.js');

/**
 * How long the SMTP server stays away in the smtp-down scenario. The issue asks for 2 minutes; the default here is
 * 30 s to keep the suite within CI's budget (the notify retry schedule, 5 s doubling up to 1 min, is the same either
 * way). FAULT_SMTP_DOWN_MS=120000 runs the full 2 minutes.
 */
const SMTP_DOWN_MS = Number(process.env.FAULT_SMTP_DOWN_MS ?? 30_000);

let env: Env;
let smtp: SmtpSink;
beforeAll(async () => { env = await startEnv(); smtp = env.smtp; });
afterAll(async () => {
  if (smtp !== env?.smtp) await smtp?.stop();
  await env?.close();
});

describe('fault injection: notifier away, racing starts, files changing under tar', () => {
  it(title('smtp-down'), async () => {
    // A run that fails fast (its source is gone) while the SMTP server is down.
    const job = await writeJob(env, (c) => { c.jobs.app.sources[0].paths = ['/nonexistent/backupctl-fault']; c.settings.notifyTimeout = `${Math.round(SMTP_DOWN_MS / 1000) + 120}s`; });
    const remote = localRemote(env.sshd.root);
    const before = await snapshot(remote);
    const port = smtp.port;
    await smtp.stop();
    const { handle, outcome, backAt, endedAt } = await withWorker(env, job, async () => {
      const h = await startRun(env, job);
      await sleep(SMTP_DOWN_MS);
      // The server is back, on the same port and with the same login.
      smtp = await startSmtpSink({ auth: { user: 'mailer', pass: 'smtp-secret-Zq7' }, port });
      const back = Date.now();
      const o = await outcomeOf(h);
      return { handle: h, outcome: o, backAt: back, endedAt: Date.now() };
    });
    await assertInvariant({ id: 'smtp-down', handle, outcome, remotes: [remote], before: [before], smtp, job, note: `SMTP down ${SMTP_DOWN_MS / 1000} s; mail delivered ${Math.round((endedAt - backAt) / 1000)} s after it was back` });
    expect(failureMessage(outcome)).toMatch(/failed in the dump step/);
    const mails = smtp.messages.filter((m) => m.text?.includes(handle.workflowId));
    expect(mails).toHaveLength(1);
    expect(mails[0]!.subject).toMatch(/FAILED: app full backup .*\(dump\)/);
    // The run ended only once the mail was out, and (5 s doubling, at most 1 min apart) within a minute of it.
    expect(endedAt - backAt).toBeLessThan(70_000);
  }, SMTP_DOWN_MS + 180_000);

  it(title('notifiers-cut'), async () => {
    const hook = await startHttpSink();
    const smtpProxy = await startFaultProxy({ host: smtp.host, port: smtp.port });
    const hookProxy = await startFaultProxy({ host: hook.host, port: hook.port });
    try {
      const job = await writeJob(env, (c) => {
        c.jobs.app.sources[0].paths = ['/nonexistent/backupctl-fault'];
        c.notifiers.ops.port = smtpProxy.port;
        c.notifiers.hook = { type: 'webhook', url: `http://127.0.0.1:${hookProxy.port}/backup`, timeout: '2s' };
        c.jobs.app.notify = ['ops', 'hook'];
      });
      const remote = localRemote(env.sshd.root);
      const before = await snapshot(remote);
      // The mail is cut in the middle of its DATA (after EHLO, AUTH, MAIL, RCPT: ~300 bytes); the webhook's request
      // stalls after its first bytes, before the headers are complete.
      smtpProxy.arm({ kind: 'cut', afterBytes: 700 });
      hookProxy.arm({ kind: 'stall', afterBytes: 40 });
      const { handle, outcome } = await runToOutcome(env, job);
      expect(smtpProxy.events.map((e) => e.kind)).toEqual(['cut']);
      expect(hookProxy.events.map((e) => e.kind)).toEqual(['stall']);
      await assertInvariant({ id: 'notifiers-cut', handle, outcome, remotes: [remote], before: [before], smtp, job, note: 'mail and webhook each delivered once after a retry' });
      // Delivered once each: the cut message was never accepted, the stalled request never reached the server.
      expect(smtp.messages.filter((m) => m.text?.includes(handle.workflowId))).toHaveLength(1);
      const posts = hook.requests.filter((r) => r.body.includes(handle.workflowId));
      expect(posts).toHaveLength(1);
      expect(posts[0]!.headers['x-backupctl-event-id']).toMatch(/^[0-9a-f]{32}$/);
      expect(`<${posts[0]!.headers['x-backupctl-event-id']}@backupctl>`).toBe(smtp.messages.find((m) => m.text?.includes(handle.workflowId))!.messageId);
    } finally {
      hookProxy.release();
      await Promise.all([smtpProxy.stop(), hookProxy.stop()]);
      await hook.stop();
    }
  });

  it(title('same-slot-x3'), async () => {
    const job = await writeJob(env);
    const remote = localRemote(env.sshd.root);
    const before = await snapshot(remote);
    const slot = nextSlot();
    const workflowId = backupWorkflowId(job.deployment, 'app', 'full', slot);
    // Three `backupctl run` at the same moment (incident 03: cron started the script three times).
    const results = await withWorker(env, job, async () => {
      const runs = await Promise.all([1, 2, 3].map(() => runCommand(process.execPath, [cli, '--config', job.configFile, 'run', 'app', '--slot', slot.toISOString(), '--wait'], { env: { ...process.env, TEMPORAL_ADDRESS: env.address }, timeoutMs: 90_000 })));
      return runs;
    });
    const ok = results.filter((r) => r.code === 0);
    const refused = results.filter((r) => r.code !== 0);
    expect(ok, results.map((r) => r.stderr).join('\n')).toHaveLength(1);
    expect(refused).toHaveLength(2);
    for (const r of refused) expect(r.stderr).toContain(`a run for job app (full) slot ${slot.toISOString().replace('.000Z', 'Z')} already exists: ${workflowId}`);
    // Exactly one run of that workflow ID.
    const runs = [];
    for await (const w of env.client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) runs.push(w);
    expect(runs).toHaveLength(1);
    const handle = env.client.workflow.getHandle(workflowId);
    const outcome = await outcomeOf(handle);
    await assertInvariant({ id: 'same-slot-x3', handle, outcome, remotes: [remote], before: [before], smtp, job, note: '1 started, 2 refused (exit 1, "already exists")' });
  });

  it(title('files-changing'), async () => {
    const job = await writeJob(env, (c) => { c.notifiers.ops.onSuccess = true; });
    const growing = path.join(job.dataDir, 'growing.log');
    writeFileSync(growing, randomBytes(8 * 1024 * 1024));
    // A process appending to the file for as long as the run lasts.
    const writer: ChildProcess = spawn('sh', ['-c', `while :; do head -c 65536 /dev/urandom >> '${growing}'; done`], { stdio: 'ignore' });
    const remote = localRemote(env.sshd.root);
    const before = await snapshot(remote);
    let handle;
    let outcome;
    try {
      ({ handle, outcome } = await runToOutcome(env, job));
    } finally {
      writer.kill('SIGKILL');
    }
    await assertInvariant({ id: 'files-changing', handle, outcome, remotes: [remote], before: [before], smtp, job });
    if (outcome.status !== 'completed') throw new Error('unreachable');
    const r = outcome.result;
    expect(r.status).toBe('succeeded_with_warnings');
    const warning = r.warnings.find((w) => /changed/i.test(w));
    expect(warning, r.warnings.join('\n')).toBeDefined();
    const final = path.join(env.sshd.root, r.locations[0]!.path);
    const manifest = JSON.parse(readFileSync(`${final}.manifest.json`, 'utf8')) as Manifest;
    expect(manifest.warnings).toContain(warning);
    const mail = await smtp.waitFor((m) => m.text?.includes(handle.workflowId) === true);
    expect(mail.subject).toMatch(/WARNING: app full backup/);
    expect(mail.text).toContain(warning);
    // The archive is still valid: the artifact and its component list and decompress.
    const out = mkdtempSync(path.join(tmpdir(), 'fault-restore-'));
    execFileSync('tar', ['-xf', final, '-C', out]);
    const listing = execFileSync('sh', ['-c', `zstd -dc '${path.join(out, 'app-files.tar.zst')}' | tar -t`], { maxBuffer: 1 << 24 }).toString();
    expect(listing).toContain('growing.log');
    expect(listing).toContain('hello.txt');
  });
});

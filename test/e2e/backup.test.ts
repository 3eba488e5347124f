import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync, openSync, writeSync, closeSync, readSync, mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CancelledFailure } from '@temporalio/common';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BACKUP_WORKFLOW, type BackupResult, type Manifest } from '../../src/contracts/index.js';
import { closeDestinations } from '../../src/destinations/index.js';
import { awaitBackup, failureOf, resultOf, runBackup, startBackup, waitForStep } from '../helpers/run-backup.js';
import { startSshd } from '../helpers/sshd.js';
import { runCommand, waitFor } from '../helpers/util.js';
import { fileSize, historyText, listFiles, sha256File, startEnv, withWorker, writeJob, type Env, type JobSetup } from './fixture.js';

const repo = path.resolve(import.meta.dirname, '../..');
const cli = path.join(repo, 'bin', 'backupctl.js');

let env: Env;
// The sftp-server program logs each request (VERBOSE): the happy path checks the flush happens before the rename.
beforeAll(async () => { env = await startEnv({ logSftpRequests: true }); });
afterAll(async () => { await env?.close(); });

let slotCounter = 0;
/** A distinct slot per run, so that workflow IDs never collide between tests. */
function nextSlot(): Date {
  return new Date(Date.UTC(2025, 10, 4, 3, slotCounter++, 0));
}

const start = (job: JobSetup) => startBackup(env.client, { taskQueue: job.taskQueue, slot: nextSlot() });
const run = (job: JobSetup) => runBackup(env.client, { taskQueue: job.taskQueue, slot: nextSlot() });

const remoteFiles = () => listFiles(env.sshd.root);
const mailsFor = (workflowId: string) => env.smtp.messages.filter((m) => m.text?.includes(workflowId));

describe('a verified backup, end to end (Temporal dev server, OpenSSH, SMTP)', () => {
  it('happy path: lands under tier/slot with its manifest, the remote hash matches, the success mail has the details', async () => {
    const job = await writeJob(env);
    await closeDestinations();
    const logins = () => env.sshd.log().match(/Accepted publickey/g)?.length ?? 0;
    const loginsBefore = logins();
    const outcome = await withWorker(env, job, () => run(job));
    const { handle } = outcome;
    const result = resultOf(outcome);
    expect(result.status).toBe('succeeded');
    // One SSH connection served preflight, upload, verify and finalize.
    expect(logins() - loginsBefore).toBe(1);
    expect(result.locations).toEqual([{ destination: 'nas', path: expect.stringMatching(/^daily\/2025\/11\/04\/03\d\d\/app-full-20251104T03\d\d00Z\.tar$/) }]);
    const final = path.join(env.sshd.root, result.locations[0]!.path);
    const manifest = JSON.parse(readFileSync(`${final}.manifest.json`, 'utf8')) as Manifest;
    // A fresh hash of the stored file equals the manifest and the result.
    expect(sha256File(final)).toBe(manifest.artifact.sha256);
    expect(fileSize(final)).toBe(manifest.artifact.size);
    expect(result.sha256).toBe(manifest.artifact.sha256);
    expect(manifest).toMatchObject({ job: 'app', type: 'full', workflowId: handle.workflowId, components: [{ name: 'app-files', member: 'app-files.tar.zst', stats: { files: 2 } }] });
    expect(manifest.tools.tar).toMatch(/GNU tar/);
    // Nothing but the backup, its manifest and the manifest's signature; no temporary file, no staging left.
    expect(remoteFiles().filter((f) => f.startsWith(`${path.posix.dirname(result.locations[0]!.path)}/`))).toEqual([result.locations[0]!.path, `${result.locations[0]!.path}.manifest.json`, `${result.locations[0]!.path}.manifest.json.sig`]);
    expect(remoteFiles().some((f) => f.endsWith('.tmp'))).toBe(false);
    // The temporary file was flushed to the remote disk (fsync@openssh.com, in verify) before it took its final name.
    const requests = env.sshd.sftpLog().split('\n');
    const tmpFile = path.join(path.dirname(final), `.${path.basename(final)}.`);
    const synced = requests.findIndex((l) => l.startsWith(`fsync "${tmpFile}`) && l.endsWith('.tmp"'));
    const renamed = requests.findIndex((l) => /^(posix-)?rename old "/.test(l) && l.includes(`"${tmpFile}`) && l.endsWith(` new "${final}"`));
    expect(synced).toBeGreaterThanOrEqual(0);
    expect(renamed).toBeGreaterThan(synced);
    expect(existsSync(path.join(job.stateDir, 'staging'))).toBe(true);
    expect(listFiles(path.join(job.stateDir, 'staging'))).toEqual([]);
    // The artifact restores: its component is a zstd tar of the source files.
    const out = mkdtempSync(path.join(tmpdir(), 'restore-'));
    execFileSync('tar', ['-xf', final, '-C', out]);
    const component = path.join(out, 'app-files.tar.zst');
    expect(sha256File(component)).toBe(manifest.components[0]!.sha256);
    execFileSync('sh', ['-c', `zstd -dc '${component}' | tar -x -C '${out}'`]);
    expect(readFileSync(path.join(out, job.dataDir, 'hello.txt'), 'utf8')).toBe('hello backup\n');
    // The success mail, with the details.
    const mail = await env.smtp.waitFor((m) => m.subject?.includes('OK: app full backup') === true && m.text?.includes(handle.workflowId) === true);
    expect(mail.text).toContain(manifest.artifact.sha256);
    expect(mail.text).toContain(result.locations[0]!.path);
    expect(mail.messageId).toMatch(/@backupctl>$/);
    expect(env.smtp.received.find((r) => r.mail === mail)?.user).toBe('mailer');
    // No secret in the history the Web UI shows.
    const history = await historyText(handle);
    expect(history).toContain(manifest.artifact.sha256); // the decoding works: results are visible
    expect(history).not.toContain('smtp-secret-Zq7');
    expect(history).not.toContain(readFileSync(env.sshd.clientKeyPath, 'utf8').split('\n')[1]);
  });

  it('by default the upload follows the dump (uploadWhileDumping): it starts before the dump ends, and a dump retried half way leaves the retry\'s bytes stored', async () => {
    const marker = path.join(mkdtempSync(path.join(tmpdir(), 'follow-')), 'failed-once');
    // Attempt 1 writes 3 MB of "A" and fails; attempt 2 writes 3 MB of "B", pauses, then 1 MB of "C".
    const script = `if [ -f ${marker} ]; then head -c 3000000 /dev/zero | tr '\\0' B; sleep 1; head -c 1000000 /dev/zero | tr '\\0' C; `
      + `else head -c 3000000 /dev/zero | tr '\\0' A; sleep 1; touch ${marker}; exit 3; fi`;
    const job = await writeJob(env, (c) => {
      c.jobs.app.sources = [{ name: 'stream', type: 'command', command: ['sh', '-c', script], compress: false }];
    });
    expect((job.config as { settings?: { uploadWhileDumping?: unknown } }).settings?.uploadWhileDumping).toBeUndefined();
    const outcome = await withWorker(env, job, () => run(job));
    const result = resultOf(outcome);
    const final = path.join(env.sshd.root, result.locations[0]!.path);
    expect(sha256File(final)).toBe(result.sha256);
    const member = execFileSync('tar', ['-xOf', final, 'stream.bin'], { maxBuffer: 16 * 1024 * 1024 });
    expect(member.equals(Buffer.concat([Buffer.alloc(3_000_000, 'B'), Buffer.alloc(1_000_000, 'C')]))).toBe(true);
    const events = (await outcome.handle.fetchHistory()).events ?? [];
    const scheduled = new Map(events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType!.name]));
    const at = (pred: (e: (typeof events)[number]) => boolean) => events.findIndex(pred);
    const uploadScheduled = at((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'upload');
    const dumpCompleted = at((e) => scheduled.get(String(e.activityTaskCompletedEventAttributes?.scheduledEventId)) === 'dump');
    expect(uploadScheduled).toBeGreaterThan(-1);
    expect(uploadScheduled).toBeLessThan(dumpCompleted);
    // The dump ran twice; the upload once: it followed the retry instead of starting again.
    const attempts = (name: string) => events.filter((e) => e.activityTaskStartedEventAttributes && scheduled.get(String(e.activityTaskStartedEventAttributes.scheduledEventId)) === name).map((e) => e.activityTaskStartedEventAttributes!.attempt);
    expect(attempts('dump')).toEqual([2]);
    expect(attempts('upload')).toEqual([1]);
    expect(remoteFiles().some((f) => f.endsWith('.tmp'))).toBe(false);
  });

  it('a run is resolved once: backup.yml edited between dump and upload changes nothing of the running backup', async () => {
    const job = await writeJob(env);
    const moved = path.join(env.sshd.root, `moved-${randomBytes(4).toString('hex')}`);
    mkdirSync(moved);
    // Right after the dump, an operator points the destination elsewhere and drops the job's source.
    const edited = structuredClone(job.config) as { destinations: { nas: { path: string } }; jobs: { app: { sources: unknown[] } } };
    edited.destinations.nas.path = moved;
    edited.jobs.app.sources = [{ name: 'other', type: 'files', paths: [moved] }];
    const outcome = await withWorker(env, job, () => run(job), (a) => ({
      ...a,
      dump: async (input) => {
        const r = await a.dump(input);
        writeFileSync(job.configFile, stringify(edited));
        return r;
      },
    }));
    const result = resultOf(outcome);
    expect(readFileSync(job.configFile, 'utf8')).toContain(moved);
    // Uploaded, verified and finalized where preflight planned it, with the source it dumped.
    const final = path.join(env.sshd.root, result.locations[0]!.path);
    expect(result.locations[0]!.path).toMatch(/^daily\//);
    expect(sha256File(final)).toBe(result.sha256);
    const manifest = JSON.parse(readFileSync(`${final}.manifest.json`, 'utf8')) as Manifest;
    expect(manifest.components.map((c) => c.name)).toEqual(['app-files']);
    expect(listFiles(moved)).toEqual([]);
    // The plan in the history carries secret references, never their values.
    const history = await historyText(outcome.handle);
    expect(history).toContain('"resolved"');
    expect(history).not.toContain(process.env.TEST_SMTP_PASSWORD);
  });

  it('incident 01: the temporary file vanishes between upload and verify → fails at verify, failure mail, no success mail, nothing left', async () => {
    const job = await writeJob(env);
    const before = remoteFiles();
    const outcome = await withWorker(env, job, () => run(job), (a) => ({
      ...a,
      upload: async (input) => {
        const r = await a.upload(input);
        unlinkSync(path.join(env.sshd.root, input.tempPath));
        return r;
      },
    }));
    const { handle } = outcome;
    const err = failureOf(outcome);
    expect(err.cause?.message).toMatch(/failed in the verify step: verify: .* does not exist/);
    const mails = mailsFor(handle.workflowId);
    expect(mails.map((m) => m.subject)).toEqual([expect.stringMatching(/^\[backupctl\] FAILED: app full backup .* \(verify\)$/)]);
    expect(mails[0]!.text).toContain('Step:     verify');
    expect(mails[0]!.text).toContain('VERIFY_MISSING');
    expect(remoteFiles()).toEqual(before);
    expect(listFiles(path.join(job.stateDir, 'staging'))).toEqual([]);
  });

  it('a byte changed on the remote between upload and verify is detected; no final file with wrong content exists', async () => {
    const job = await writeJob(env);
    const before = remoteFiles();
    const flip = (file: string) => {
      const fd = openSync(file, 'r+');
      const b = Buffer.alloc(1);
      readSync(fd, b, 0, 1, 700);
      writeSync(fd, Buffer.from([b[0]! ^ 0xff]), 0, 1, 700);
      closeSync(fd);
    };
    const err = failureOf(await withWorker(env, job, () => run(job), (a) => ({ ...a, upload: async (input) => { const r = await a.upload(input); flip(path.join(env.sshd.root, input.tempPath)); return r; } })));
    expect(err.cause?.message).toMatch(/verify step: verify: SHA-256 mismatch/);
    expect(remoteFiles()).toEqual(before);

    // Corrupted once only: uploaded again, verified, finalized, with a warning that says so.
    const job2 = await writeJob(env);
    let flips = 0;
    const result = await withWorker(env, job2, async () => resultOf(await run(job2)),
      (a) => ({ ...a, upload: async (input) => { const r = await a.upload(input); if (flips++ === 0) flip(path.join(env.sshd.root, input.tempPath)); return r; } }));
    expect(result.status).toBe('succeeded_with_warnings');
    expect(result.warnings.join('\n')).toMatch(/verification failed .*SHA-256 mismatch.*uploaded again/);
    expect(sha256File(path.join(env.sshd.root, result.locations[0]!.path))).toBe(result.sha256);
  });

  it('host key mismatch is refused with a clear error; nothing uploaded', async () => {
    const job = await writeJob(env, (c) => { c.destinations.nas.hostKey = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'; });
    const before = remoteFiles();
    const outcome = await withWorker(env, job, () => run(job));
    const { handle } = outcome;
    const err = failureOf(outcome);
    expect(err.cause?.message).toMatch(/preflight step: .*host key mismatch: the server presented SHA256:\S+, the config pins SHA256:AAAA/);
    expect((err.cause as { type?: string }).type).toBe('HOST_KEY_MISMATCH');
    const mail = await env.smtp.waitFor((m) => m.text?.includes(handle.workflowId) === true);
    expect(mail.text).toContain('Attempts: 1');
    expect(remoteFiles()).toEqual(before);

    // The same with a known_hosts file that lists another key for this host.
    const other = await startSshd();
    try {
      // A known_hosts line for this server's address and port, but with the other server's key.
      const knownHosts = path.join(env.tmp.path, 'known_hosts_other');
      writeFileSync(knownHosts, readFileSync(other.knownHostsPath, 'utf8').replace(`]:${other.port}`, `]:${env.sshd.port}`));
      const job2 = await writeJob(env, (c) => { delete c.destinations.nas.hostKey; c.destinations.nas.knownHosts = knownHosts; });
      const err2 = failureOf(await withWorker(env, job2, () => run(job2)));
      expect(err2.cause?.message).toMatch(/host key refused: the server presented SHA256:\S+, which does not match the key in/);
    } finally {
      await other.stop();
    }
  });

  it('a key the server does not accept is a permanent failure: one attempt, a clear message, nothing uploaded', async () => {
    const key = path.join(env.tmp.path, 'unknown_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const job = await writeJob(env, (c) => { c.destinations.nas.privateKey = key; });
    const before = remoteFiles();
    const outcome = await withWorker(env, job, () => run(job));
    const { handle } = outcome;
    const err = failureOf(outcome);
    expect(err.cause?.message).toMatch(new RegExp(`preflight step: destination "nas" \\(${env.sshd.user}@127\\.0\\.0\\.1:\\d+\\): authentication failed for user ${env.sshd.user} with key ${key}`));
    expect((err.cause as { type?: string }).type).toBe('DESTINATION_AUTH');
    const mail = await env.smtp.waitFor((m) => m.text?.includes(handle.workflowId) === true);
    expect(mail.text).toContain('Attempts: 1');
    expect(remoteFiles()).toEqual(before);
  });

  it('a files source that cannot be read → failure mail naming the source; nothing uploaded', async () => {
    const job = await writeJob(env, (c) => { c.jobs.app.sources[0].paths = ['/nonexistent/backupctl-test']; });
    const before = remoteFiles();
    const outcome = await withWorker(env, job, () => run(job));
    const { handle } = outcome;
    const err = failureOf(outcome);
    expect(err.cause?.message).toMatch(/failed in the dump step: source "app-files": tar exited 2: .*Cannot stat: No such file or directory/s);
    const mail = await env.smtp.waitFor((m) => m.text?.includes(handle.workflowId) === true);
    expect(mail.subject).toMatch(/FAILED: .*\(dump\)/);
    expect(mail.text).toContain('SOURCE_UNREADABLE');
    expect(remoteFiles()).toEqual(before);
    expect(listFiles(path.join(job.stateDir, 'staging'))).toEqual([]);
  });

  it('a remote disk too full for the estimated size fails in preflight, before any dump', async () => {
    const job = await writeJob(env);
    // A sparse 10 TiB file: no earlier backup to go by, so the estimate is the sources' apparent size.
    execFileSync('truncate', ['-s', '10T', path.join(job.dataDir, 'huge.sparse')]);
    const before = remoteFiles();
    const outcome = await withWorker(env, job, () => run(job));
    const { handle } = outcome;
    const err = failureOf(outcome);
    expect(err.cause?.message).toMatch(/failed in the preflight step: not enough space on destination "nas" \(sftp:\/\/.*\): [\d.]+ [KMGT]iB free, 12\.0 TiB needed/);
    expect((err.cause as { type?: string }).type).toBe('DESTINATION_SPACE');
    const history = await handle.fetchHistory();
    expect(history.events?.some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'dump')).toBe(false);
    expect(remoteFiles()).toEqual(before);
    const mail = await env.smtp.waitFor((m) => m.text?.includes(handle.workflowId) === true);
    expect(mail.subject).toMatch(/FAILED: .*\(preflight\)/);
  });

  it('an SFTP-only account (no commands) is verified by reading the file back', async () => {
    const sftpOnly = await startSshd({ sftpOnly: true });
    try {
      const job = await writeJob(env, (c) => Object.assign(c.destinations.nas, { port: sftpOnly.port, privateKey: sftpOnly.clientKeyPath, hostKey: sftpOnly.hostKeyFingerprint, path: sftpOnly.root }));
      const outcome = await withWorker(env, job, () => run(job));
      const { handle } = outcome;
      const result = resultOf(outcome);
      expect(sha256File(path.join(sftpOnly.root, result.locations[0]!.path))).toBe(result.sha256);
      expect(await historyText(handle)).toContain('"method":"sftp read-back"');
    } finally {
      await sftpOnly.stop();
    }
  });

  it('temporal workflow start with plain JSON input starts a real run', async () => {
    const job = await writeJob(env);
    const workflowId = `manual-${Date.now()}`;
    const result = await withWorker(env, job, async () => {
      const r = await runCommand(inject('temporalCliPath'), ['workflow', 'start', '--address', env.address, '--type', BACKUP_WORKFLOW, '--task-queue', job.taskQueue, '--workflow-id', workflowId, '--input', '{"job":"app"}'], { timeoutMs: 30_000 });
      expect(r.code, r.stderr).toBe(0);
      return env.client.workflow.getHandle(workflowId).result() as Promise<BackupResult>;
    });
    expect(result.status).toBe('succeeded');
    expect(sha256File(path.join(env.sshd.root, result.locations[0]!.path))).toBe(result.sha256);
  });

  it('cancelling during upload (temporal workflow cancel) removes the temporary file and staging and sends a "cancelled" mail', async () => {
    const job = await writeJob(env, (c) => { c.destinations.nas.bandwidthLimit = '4MB'; });
    writeFileSync(path.join(job.dataDir, 'random.bin'), randomBytes(24 * 1024 * 1024));
    const handle = await withWorker(env, job, async () => {
      const h = await start(job);
      const tmp = await waitFor(() => remoteFiles().find((f) => f.endsWith('.tmp') && f.includes(h.workflowId) && fileSize(path.join(env.sshd.root, f)) > 2 * 1024 * 1024), { timeoutMs: 60_000, description: 'the upload to be under way' });
      await waitForStep(h, 'upload');
      const r = await runCommand(inject('temporalCliPath'), ['workflow', 'cancel', '--address', env.address, '--workflow-id', h.workflowId], { timeoutMs: 30_000 });
      expect(r.code, r.stderr).toBe(0);
      await h.result().catch(() => undefined);
      expect(existsSync(path.join(env.sshd.root, tmp))).toBe(false);
      return h;
    });
    const err = failureOf(await awaitBackup(handle));
    expect(err.cause).toBeInstanceOf(CancelledFailure);
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    expect(remoteFiles().some((f) => f.includes(handle.workflowId))).toBe(false);
    expect(listFiles(path.join(job.stateDir, 'staging'))).toEqual([]);
    const mail = await env.smtp.waitFor((m) => m.text?.includes(handle.workflowId) === true);
    expect(mail.subject).toMatch(/^\[backupctl\] CANCELLED: app full backup .* \(upload\)$/);
  });

  it('a worker killed with SIGKILL during upload and started again finishes the run verified; no temporary file remains', async () => {
    const job = await writeJob(env, (c) => { c.destinations.nas.bandwidthLimit = '4MB'; c.settings.heartbeatTimeout = '3s'; });
    writeFileSync(path.join(job.dataDir, 'random.bin'), randomBytes(16 * 1024 * 1024));
    const spawnWorker = () => {
      const child = spawn(process.execPath, [cli, '--config', job.configFile, 'worker'], { env: { ...process.env, TEMPORAL_ADDRESS: env.address, BACKUPCTL_LOG_LEVEL: 'WARN' }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
      return { child, stderr: () => stderr };
    };
    const first = spawnWorker();
    const handle = await start(job);
    await waitFor(() => remoteFiles().find((f) => f.endsWith('.tmp') && f.includes(handle.workflowId) && fileSize(path.join(env.sshd.root, f)) > 3 * 1024 * 1024), { timeoutMs: 90_000, description: `the upload to be under way (${first.stderr()})` });
    process.kill(-first.child.pid!, 'SIGKILL');
    const second = spawnWorker();
    try {
      const result = resultOf(await awaitBackup(handle));
      expect(result.status).toBe('succeeded');
      const final = path.join(env.sshd.root, result.locations[0]!.path);
      expect(sha256File(final)).toBe(result.sha256);
      expect(remoteFiles().filter((f) => f.includes(handle.workflowId) || f.endsWith('.tmp'))).toEqual([]);
      const history = await handle.fetchHistory();
      const attempts = history.events?.filter((e) => e.activityTaskStartedEventAttributes?.attempt && e.activityTaskStartedEventAttributes.attempt > 1);
      expect(attempts?.length).toBeGreaterThan(0);
    } finally {
      try { process.kill(-second.child.pid!, 'SIGTERM'); } catch { /* gone */ }
    }
  });
});

describe('config errors', () => {
  it('exit code 2 with file and line', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
    const file = path.join(dir, 'backup.yml');
    writeFileSync(file, 'destinations:\n  nas:\n    type: local\n    path: 42\njobs:\n  app:\n    sources: []\n    destinations: [nas]\n');
    const r = await runCommand(process.execPath, [cli, '--config', file, 'config', 'check'], { timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:4: destinations.nas.path: expected string, received number`);
    expect(r.stderr).toContain(`${file}:7: jobs.app.sources: a job needs at least one source`);
    const missing = await runCommand(process.execPath, [cli, '--config', path.join(dir, 'nope.yml'), 'config', 'check'], { timeoutMs: 30_000 });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read config .*nope\.yml/);
    rmSync(dir, { recursive: true, force: true });
  });
});

import { Connection } from '@temporalio/client';
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { getFreePort, isPortOpen } from '../helpers/free-port.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { startSshd, startSshdSftpOnly, type SshdHandle } from '../helpers/sshd.js';
import { resolveTemporalCli, temporalHealthy } from '../helpers/temporal-server.js';
import { makeTempDir, runCommand, waitFor } from '../helpers/util.js';

function ssh(server: SshdHandle, command: string[], input?: string) {
  return runCommand('ssh', [...server.sshArgs, '-T', `${server.user}@${server.host}`, '--', ...command], { input, timeoutMs: 30_000 });
}

/** Run an sftp batch (`-b -`) against the server; -P instead of -p for the port. */
function sftpBatch(server: SshdHandle, batch: string) {
  const args = server.sshArgs.map((a) => (a === '-p' ? '-P' : a));
  return runCommand('sftp', [...args, '-b', '-', `${server.user}@${server.host}`], { input: batch, timeoutMs: 30_000 });
}

describe('helpers', () => {
  it('getFreePort returns a bindable port and makeTempDir cleans up', async () => {
    const port = await getFreePort();
    expect(port).toBeGreaterThan(0);
    expect(await isPortOpen(port)).toBe(false);
    const tmp = await makeTempDir('backupctl-harness-');
    await writeFile(path.join(tmp.path, 'f'), 'x');
    await tmp.cleanup();
    expect(existsSync(tmp.path)).toBe(false);
  });

  it('waitFor polls until truthy and times out with a description', async () => {
    let n = 0;
    await expect(waitFor(() => (++n >= 3 ? n : false), { intervalMs: 5 })).resolves.toBe(3);
    await expect(waitFor(() => false, { timeoutMs: 50, description: 'never' })).rejects.toThrow(/never/);
  });
});

describe('sshd', () => {
  let server: SshdHandle;
  beforeAll(async () => {
    server = await startSshd();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('accepts the client key with strict host key checking', async () => {
    const result = await ssh(server, ['true']);
    expect(result.code, `${result.stderr}\n--- sshd log ---\n${server.log()}`).toBe(0);
    expect(server.log()).toMatch(/Accepted publickey for \S+ from 127\.0\.0\.1/);
  });

  it('runs commands as the configured user', async () => {
    const result = await ssh(server, ['id', '-un']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(server.user);
  });

  it('presents the host key whose fingerprint it reports', async () => {
    expect(server.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    const known = await runCommand('ssh-keygen', ['-lf', server.knownHostsPath]);
    expect(known.code, known.stderr).toBe(0);
    expect(known.stdout.split(/\s+/)[1]).toBe(server.hostKeyFingerprint);
    expect(known.stdout).toContain(`[127.0.0.1]:${server.port}`);

    const scan = await runCommand('ssh-keyscan', ['-t', 'ed25519', '-p', String(server.port), '127.0.0.1'], { timeoutMs: 15_000 });
    expect(scan.code, scan.stderr).toBe(0);
    const scanned = await runCommand('ssh-keygen', ['-lf', '-'], { input: scan.stdout });
    expect(scanned.stdout.split(/\s+/)[1]).toBe(server.hostKeyFingerprint);
  });

  it('rejects a host whose key is not in known_hosts', async () => {
    const other = await makeTempDir('backupctl-harness-');
    try {
      const emptyKnownHosts = path.join(other.path, 'known_hosts');
      await writeFile(emptyKnownHosts, '');
      const args = server.sshArgs.map((a) => (a.startsWith('UserKnownHostsFile=') ? `UserKnownHostsFile=${emptyKnownHosts}` : a));
      const result = await runCommand('ssh', [...args, '-T', `${server.user}@127.0.0.1`, 'true'], { timeoutMs: 30_000 });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/Host key verification failed/);
    } finally {
      await other.cleanup();
    }
  });

  it('serves SFTP into the writable remote root', async () => {
    expect(path.isAbsolute(server.root)).toBe(true);
    const local = path.join(server.dir, 'upload.txt');
    await writeFile(local, 'hello over sftp\n');
    const result = await sftpBatch(server, `put ${local} ${server.root}/uploaded.txt\n`);
    expect(result.code, `${result.stderr}\n${server.log()}`).toBe(0);
    expect(await readFile(path.join(server.root, 'uploaded.txt'), 'utf8')).toBe('hello over sftp\n');
  });
});

describe('sshd, SFTP only', () => {
  let server: SshdHandle;
  beforeAll(async () => {
    server = await startSshdSftpOnly();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('does not run commands', async () => {
    expect(server.sftpOnly).toBe(true);
    const marker = path.join(server.root, 'should-not-exist');
    const result = await ssh(server, ['sh', '-c', `echo command-ran; touch ${marker}`]);
    expect(result.stdout).not.toContain('command-ran');
    expect(result.stdout).toMatch(/sftp connections only/);
    expect(result.code).not.toBe(0);
    expect(existsSync(marker)).toBe(false);
  });

  it('still serves SFTP', async () => {
    const local = path.join(server.dir, 'upload.bin');
    await writeFile(local, Buffer.alloc(100_000, 7));
    const result = await sftpBatch(server, `put ${local} ${server.root}/upload.bin\n`);
    expect(result.code, `${result.stderr}\n${server.log()}`).toBe(0);
    expect((await stat(path.join(server.root, 'upload.bin'))).size).toBe(100_000);
  });

  it('stop() kills sshd and removes its directory', async () => {
    const { port, dir } = server;
    await server.stop();
    expect(await isPortOpen(port)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });
});

describe('smtp sink', () => {
  let sink: SmtpSink;
  afterAll(async () => {
    await sink?.stop();
  });

  it('receives and parses mail sent with nodemailer', async () => {
    sink = await startSmtpSink();
    const transport = nodemailer.createTransport({ host: sink.host, port: sink.port, secure: false, ignoreTLS: true });
    await transport.sendMail({ from: 'backupctl@example.test', to: 'ops@example.test', subject: 'Backup ok: db1', text: 'all good' });
    transport.close();
    const mail = await sink.waitFor((m) => m.subject === 'Backup ok: db1');
    expect(mail.text?.trim()).toBe('all good');
    expect(mail.from?.value[0]?.address).toBe('backupctl@example.test');
    expect(sink.received[0]?.envelope.to).toEqual(['ops@example.test']);
    await expect(sink.waitFor((m) => m.subject === 'nope', 100)).rejects.toThrow(/no matching mail/);
  });

  it('requires the configured credentials when auth is on', async () => {
    const authSink = await startSmtpSink({ auth: { user: 'alerts', pass: 's3cret' } });
    try {
      const send = (auth?: { user: string; pass: string }) => {
        const transport = nodemailer.createTransport({ host: authSink.host, port: authSink.port, secure: false, ignoreTLS: true, auth });
        return transport.sendMail({ from: 'a@example.test', to: 'b@example.test', subject: `auth ${auth?.pass ?? 'none'}`, text: 'x' })
          .finally(() => transport.close());
      };
      await expect(send()).rejects.toThrow();
      await expect(send({ user: 'alerts', pass: 'wrong' })).rejects.toThrow(/535|Invalid/);
      await send({ user: 'alerts', pass: 's3cret' });
      await authSink.waitFor((m) => m.subject === 'auth s3cret');
      expect(authSink.messages).toHaveLength(1);
      expect(authSink.received[0]?.user).toBe('alerts');
      expect(authSink.authAttempts.map((a) => a.ok)).toEqual([false, true]);
    } finally {
      await authSink.stop();
    }
  });

  it('can reject every message', async () => {
    const rejecting = await startSmtpSink({ reject: { code: 552, message: 'mailbox full' } });
    try {
      const transport = nodemailer.createTransport({ host: rejecting.host, port: rejecting.port, secure: false, ignoreTLS: true });
      await expect(transport.sendMail({ from: 'a@example.test', to: 'b@example.test', subject: 's', text: 'x' })).rejects.toThrow(/mailbox full/);
      transport.close();
      expect(rejecting.messages).toHaveLength(0);
    } finally {
      await rejecting.stop();
    }
  });
});

describe('temporal dev server (globalSetup)', () => {
  const address = inject('temporalAddress');

  it('answers temporal operator cluster health', async () => {
    expect(address).toMatch(/^[\w.-]+:\d+$/);
    const cli = inject('temporalCliPath') || (await resolveTemporalCli());
    const result = await runCommand(cli, ['operator', 'cluster', 'health', '--address', address], { timeoutMs: 15_000 });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/SERVING/);
    expect(await temporalHealthy(cli, address)).toBe(true);
  });

  it('has the backupctl search attributes registered', async () => {
    const connection = await Connection.connect({ address });
    try {
      const response = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      const custom = response.customAttributes ?? {};
      for (const name of ['BackupJob', 'BackupType', 'BackupOutcome']) {
        expect(custom, name).toHaveProperty(name);
      }
    } finally {
      await connection.close();
    }
  });
});

import net, { type AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EmailNotifier } from '../../src/notifiers/email/index.js';
import { emailNotifierSchema } from '../../src/notifiers/email/schema.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { events, message, rejection } from './fixtures.js';

const USER = 'mailer';
const PASS = 'smtp-secret-Tls9';

/** A TCP relay in front of the sink that keeps every byte the client sent, to prove what went over the wire. */
async function startRecorder(target: { host: string; port: number }): Promise<{ port: number; sent: () => string; stop: () => Promise<void> }> {
  const chunks: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.on('data', (d: Buffer) => chunks.push(d));
    client.pipe(upstream).pipe(client);
    const end = (): void => { client.destroy(); upstream.destroy(); };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    sent: () => Buffer.concat(chunks).toString('latin1'),
    stop: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

function email(config: Record<string, unknown>): EmailNotifier {
  return new EmailNotifier('ops', emailNotifierSchema.parse({ type: 'email', from: 'backupctl@example.test', to: ['ops@example.test'], ...config }));
}

describe('email notifier: the password only travels over TLS', () => {
  let sink: SmtpSink;
  beforeAll(async () => {
    // Like a server whose STARTTLS was stripped by a man in the middle: it never offers STARTTLS, and would take AUTH in plain text.
    sink = await startSmtpSink({ auth: { user: USER, pass: PASS } });
    process.env.TEST_EMAIL_PASSWORD = PASS;
  });
  afterAll(async () => {
    delete process.env.TEST_EMAIL_PASSWORD;
    await sink.stop();
  });
  afterEach(() => {
    sink.authAttempts.length = 0;
  });

  it('requireTLS defaults to on when a password is set, off without one, and can be turned off explicitly', () => {
    expect(emailNotifierSchema.parse({ type: 'email', host: 'h', from: 'a@b', to: ['c@d'] }).requireTLS).toBeUndefined();
    expect(emailNotifierSchema.parse({ type: 'email', host: 'h', from: 'a@b', to: ['c@d'], requireTLS: false }).requireTLS).toBe(false);
    expect(emailNotifierSchema.shape.requireTLS.meta()?.description).toContain('default: on when a password is set');
  });

  it('with a password and no STARTTLS on offer, sending and checking fail permanently and the password is never sent', async () => {
    const rec = await startRecorder(sink);
    try {
      const n = email({ host: '127.0.0.1', port: rec.port, user: USER, password: { env: 'TEST_EMAIL_PASSWORD' } });
      const err = await rejection(() => n.send(events.failure, message(events.failure)));
      expect(err.code).toBe('NOTIFY_FAILED');
      expect(err.permanent).toBe(true);
      expect(err.message).toMatch(/did not accept STARTTLS.*login was not attempted \(requireTLS\)/);
      const checkErr = await rejection(() => n.check());
      expect(checkErr.permanent).toBe(true);
      expect(checkErr.message).toContain('STARTTLS');

      expect(sink.authAttempts).toEqual([]);
      expect(sink.messages).toHaveLength(0);
      const wire = rec.sent();
      expect(wire).toMatch(/EHLO/);
      expect(wire).toMatch(/STARTTLS/);
      expect(wire).not.toMatch(/AUTH/i);
      for (const form of [PASS, Buffer.from(PASS).toString('base64'), Buffer.from(`\0${USER}\0${PASS}`).toString('base64')]) expect(wire).not.toContain(form);
    } finally {
      await rec.stop();
    }
  });

  it('an explicit requireTLS: false still logs in over plain SMTP (a trusted local relay)', async () => {
    const n = email({ host: sink.host, port: sink.port, user: USER, password: { env: 'TEST_EMAIL_PASSWORD' }, requireTLS: false });
    await n.send(events.failure, message(events.failure));
    expect(sink.authAttempts).toEqual([expect.objectContaining({ username: USER, ok: true })]);
    expect(sink.received.at(-1)?.user).toBe(USER);
  });

  it('without a password, plain SMTP is still allowed by default (nothing secret to protect)', async () => {
    const open = await startSmtpSink();
    try {
      const n = email({ host: open.host, port: open.port });
      await n.send(events.failure, message(events.failure));
      expect(open.messages).toHaveLength(1);
      expect(open.authAttempts).toEqual([]);
    } finally {
      await open.stop();
    }
  });
});

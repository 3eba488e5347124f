import { createHmac, timingSafeEqual } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { webhookNotifierSchema } from '../../src/notifiers/webhook/schema.js';
import { WebhookNotifier, type WebhookEvent } from '../../src/notifiers/webhook/index.js';
import { startHttpSink, type HttpSink } from '../helpers/http-sink.js';
import { events, message, rejection } from './fixtures.js';

// The path of a Slack incoming webhook is its token.
const TOKEN_PATH = '/services/T0123ABCD/B0456EFGH/s3cr3tT0kenXYZ1234567890';
const SIGNING_KEY = 'whsec_0123456789abcdef-signing-key';

function webhook(config: Record<string, unknown>, name = 'hook'): WebhookNotifier {
  return new WebhookNotifier(name, webhookNotifierSchema.parse({ type: 'webhook', ...config }));
}

describe('webhook notifier (real HTTP against the sink)', () => {
  let sink: HttpSink;
  beforeAll(async () => {
    sink = await startHttpSink();
  });
  afterAll(async () => {
    await sink.stop();
  });
  beforeEach(() => {
    sink.reset();
    process.env.TEST_WEBHOOK_URL = `${sink.url}${TOKEN_PATH}`;
    process.env.TEST_WEBHOOK_KEY = SIGNING_KEY;
  });
  afterEach(() => {
    delete process.env.TEST_WEBHOOK_URL;
    delete process.env.TEST_WEBHOOK_KEY;
  });

  it('json: POSTs the generic event for success and failure, with the event ID header; start is not wanted by default', async () => {
    const n = webhook({ url: `${sink.url}/hook` });
    expect(n.wants(events.start)).toBe(false);
    for (const kind of ['success', 'failure', 'cancelled', 'skipped', 'alert'] as const) expect(n.wants(events[kind])).toBe(true);

    for (const event of [events.success, events.failure]) {
      const m = message(event);
      await n.send(event, m);
      const req = await sink.waitFor((r) => r.headers['x-backupctl-event-id'] === m.id);
      expect(req.method).toBe('POST');
      expect(req.path).toBe('/hook');
      expect(req.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(req.headers['x-backupctl-signature']).toBeUndefined();
      const body = JSON.parse(req.body) as WebhookEvent;
      expect(body).toEqual({
        source: 'backupctl', version: 1, id: m.id, kind: event.kind, job: 'app', subject: m.subject, text: m.text, event,
      });
    }
    expect(sink.requests).toHaveLength(2);
  });

  it('json: start is sent when listed in events', async () => {
    const n = webhook({ url: `${sink.url}/hook`, events: ['start', 'success', 'failure', 'cancelled'] });
    expect(n.wants(events.start)).toBe(true);
    expect(n.wants(events.alert)).toBe(false);
    const m = message(events.start);
    await n.send(events.start, m);
    const body = JSON.parse((await sink.waitFor(() => true)).body) as WebhookEvent;
    expect(body).toMatchObject({ kind: 'start', id: m.id, job: 'app', subject: m.subject, event: events.start });
  });

  it('slack: POSTs {"text": subject + newline + text}, with Slack\'s control characters escaped', async () => {
    const n = webhook({ url: `${sink.url}/slack`, format: 'slack', events: ['start', 'success', 'failure', 'cancelled'] });
    for (const event of [events.start, events.success, events.failure]) {
      const m = message(event);
      await n.send(event, m);
      const req = await sink.waitFor((r) => r.headers['x-backupctl-event-id'] === m.id);
      const body = JSON.parse(req.body) as Record<string, unknown>;
      expect(Object.keys(body)).toEqual(['text']);
      const expected = `${m.subject}\n${m.text}`.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
      expect(body.text).toBe(expected);
    }
    const failureText = (JSON.parse(sink.requests[2]!.body) as { text: string }).text;
    expect(failureText).toContain('[backupctl] FAILED: app full backup 2025-11-04T03:00:00Z (verify)\nBackup FAILED in the verify step');
    expect(failureText).toContain('SHA-256 mismatch &lt;expected&gt; &amp; &lt;actual&gt;');
  });

  it('reads the URL from an env reference and signs the exact body bytes with HMAC-SHA256 over "<timestamp>.<body>"', async () => {
    const n = webhook({ url: { env: 'TEST_WEBHOOK_URL' }, secret: { env: 'TEST_WEBHOOK_KEY' } });
    const m = message(events.failure);
    const before = Math.floor(Date.now() / 1000);
    await n.send(events.failure, m);
    const req = await sink.waitFor(() => true);
    expect(req.path).toBe(TOKEN_PATH);

    const timestamp = req.headers['x-backupctl-timestamp'] as string;
    expect(timestamp).toMatch(/^\d+$/);
    expect(Number(timestamp)).toBeGreaterThanOrEqual(before);
    expect(Number(timestamp)).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    // What a receiver does: recompute over the raw bytes and compare in constant time.
    const expected = `sha256=${createHmac('sha256', SIGNING_KEY).update(`${timestamp}.`).update(req.raw).digest('hex')}`;
    const got = req.headers['x-backupctl-signature'] as string;
    expect(got).toBe(expected);
    expect(timingSafeEqual(Buffer.from(got), Buffer.from(expected))).toBe(true);
    // A tampered body or another timestamp does not verify.
    const tampered = createHmac('sha256', SIGNING_KEY).update(`${timestamp}.`).update(req.body.replace('verify', 'upload')).digest('hex');
    expect(got).not.toBe(`sha256=${tampered}`);
    const otherTime = createHmac('sha256', SIGNING_KEY).update(`${Number(timestamp) + 1}.`).update(req.raw).digest('hex');
    expect(got).not.toBe(`sha256=${otherTime}`);
    expect(req.headers['x-backupctl-event-id']).toBe(m.id);
  });

  it('sends extra headers, also from secret references', async () => {
    process.env.TEST_WEBHOOK_AUTH = 'Bearer tok_abcdef123456';
    try {
      const n = webhook({ url: `${sink.url}/hook`, headers: { 'X-Team': 'ops', Authorization: { env: 'TEST_WEBHOOK_AUTH' } } });
      await n.send(events.success, message(events.success));
      const req = await sink.waitFor(() => true);
      expect(req.headers['x-team']).toBe('ops');
      expect(req.headers.authorization).toBe('Bearer tok_abcdef123456');
    } finally {
      delete process.env.TEST_WEBHOOK_AUTH;
    }
  });

  it('a 4xx is a permanent error with status and excerpt, and never shows the URL\'s token', async () => {
    const n = webhook({ url: { env: 'TEST_WEBHOOK_URL' }, format: 'slack' });
    // Like many servers' 404 pages, the answer echoes the path (the token): it must be scrubbed.
    sink.respondWith(404, { body: `Cannot POST ${TOKEN_PATH}: no_service` });
    const err = await rejection(() => n.send(events.failure, message(events.failure)));
    expect(err.code).toBe('NOTIFY_FAILED');
    expect(err.permanent).toBe(true);
    expect(err.message).toContain('HTTP 404');
    expect(err.message).toContain('no_service');
    expect(err.message).toContain(`notifier "hook" (webhook http://127.0.0.1:${sink.port}/…)`);
    expect(err.message).not.toContain('s3cr3tT0ken');
    expect(err.message).not.toContain('T0123ABCD');
    expect(JSON.stringify(err)).not.toContain('s3cr3tT0ken');

    for (const status of [400, 401, 403, 410]) {
      sink.respondWith(status);
      expect((await rejection(() => n.send(events.failure, message(events.failure)))).permanent).toBe(true);
    }
  });

  it('5xx, 408 and 429 are retryable; a resend carries the same event ID', async () => {
    const n = webhook({ url: `${sink.url}/hook`, secret: { env: 'TEST_WEBHOOK_KEY' } });
    const m = message(events.failure);
    for (const status of [500, 502, 503, 408, 429]) {
      sink.respondWith(status, { times: 1, body: 'upstream down' });
      const err = await rejection(() => n.send(events.failure, m));
      expect(err.code).toBe('NOTIFY_FAILED');
      expect(err.permanent).toBe(false);
      expect(err.message).toContain(`HTTP ${status}`);
      expect(err.message).toContain('upstream down');
    }
    await n.send(events.failure, m); // the "retry" succeeds: the sink answers 200 again
    expect(sink.requests.map((r) => r.status)).toEqual([500, 502, 503, 408, 429, 200]);
    expect(new Set(sink.requests.map((r) => r.headers['x-backupctl-event-id']))).toEqual(new Set([m.id]));
  });

  it('a redirect is not followed and is permanent', async () => {
    const n = webhook({ url: `${sink.url}/hook` });
    sink.respondWith(301, { body: '' });
    const err = await rejection(() => n.send(events.success, message(events.success)));
    expect(err.permanent).toBe(true);
    expect(err.message).toContain('HTTP 301');
    expect(sink.requests).toHaveLength(1);
  });

  it('no answer within the timeout is retryable', async () => {
    const n = webhook({ url: `${sink.url}/hook`, timeout: '300ms' });
    sink.respondWith(200, { delayMs: 3_000 });
    const started = Date.now();
    const err = await rejection(() => n.send(events.success, message(events.success)));
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(err.permanent).toBe(false);
    expect(err.message).toContain('no answer within 0.3 s');
  });

  it('a server that is down (connection refused) is a retryable error without the token', async () => {
    const down = await startHttpSink();
    const url = `${down.url}${TOKEN_PATH}`;
    await down.stop();
    process.env.TEST_WEBHOOK_URL = url;
    const n = webhook({ url: { env: 'TEST_WEBHOOK_URL' } });
    const err = await rejection(() => n.send(events.failure, message(events.failure)));
    expect(err.code).toBe('NOTIFY_FAILED');
    expect(err.permanent).toBe(false);
    expect(err.message).toMatch(/cannot connect: .*ECONNREFUSED/);
    expect(err.message).not.toContain('s3cr3tT0ken');
  });

  it('a missing URL secret or a value that is not a URL is permanent, and the value is not quoted', async () => {
    delete process.env.TEST_WEBHOOK_URL;
    const missing = await rejection(() => webhook({ url: { env: 'TEST_WEBHOOK_URL' } }).send(events.failure, message(events.failure)));
    expect(missing).toMatchObject({ code: 'SECRET_UNAVAILABLE', permanent: true });
    process.env.TEST_WEBHOOK_URL = 'ftp-not-a-url-s3cr3tT0ken';
    const bad = await rejection(() => webhook({ url: { env: 'TEST_WEBHOOK_URL' } }).send(events.failure, message(events.failure)));
    expect(bad).toMatchObject({ code: 'NOTIFY_FAILED', permanent: true });
    expect(bad.message).toContain('environment variable TEST_WEBHOOK_URL');
    expect(bad.message).not.toContain('s3cr3tT0ken');
  });

  it('check() connects without sending a request, and fails when the server is down', async () => {
    const n = webhook({ url: { env: 'TEST_WEBHOOK_URL' }, secret: { env: 'TEST_WEBHOOK_KEY' } });
    const ok = await n.check();
    expect(ok).toContain(`http://127.0.0.1:${sink.port}/… reachable`);
    expect(ok).not.toContain('s3cr3tT0ken');
    expect(sink.requests).toHaveLength(0);

    const down = await startHttpSink();
    await down.stop();
    const err = await rejection(() => webhook({ url: `${down.url}/hook` }).check());
    expect(err.message).toMatch(/ECONNREFUSED/);
  });
});

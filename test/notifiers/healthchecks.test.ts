import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { healthchecksNotifierSchema } from '../../src/notifiers/healthchecks/schema.js';
import { HealthchecksNotifier, PING_BODY_LIMIT, pingRunId } from '../../src/notifiers/healthchecks/index.js';
import type { BackupEvent } from '../../src/contracts/index.js';
import { startHttpSink, type HttpSink } from '../helpers/http-sink.js';
import { events, message, rejection, workflowId } from './fixtures.js';

const UUID = '5f4c1a2b-9d3e-4f60-8a7b-1c2d3e4f5a6b';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function hc(config: Record<string, unknown>, name = 'hc'): HealthchecksNotifier {
  return new HealthchecksNotifier(name, healthchecksNotifierSchema.parse({ type: 'healthchecks', ...config }));
}

describe('healthchecks notifier (real HTTP against the sink)', () => {
  let sink: HttpSink;
  let dir: string;
  beforeAll(async () => {
    sink = await startHttpSink();
    dir = await mkdtemp(path.join(tmpdir(), 'backupctl-hc-'));
  });
  afterAll(async () => {
    await sink.stop();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => sink.reset());

  it('start → /<uuid>/start, success → /<uuid>, both with the same rid derived from the workflow ID', async () => {
    const n = hc({ baseUrl: sink.url, uuid: UUID });
    for (const kind of Object.keys(events) as BackupEvent['kind'][]) expect(n.wants(events[kind])).toBe(kind !== 'drill');

    await n.send(events.start, message(events.start));
    await n.send(events.success, message(events.success));
    const [start, success] = sink.requests;
    expect(start).toMatchObject({ method: 'POST', path: `/${UUID}/start` });
    expect(success).toMatchObject({ method: 'POST', path: `/${UUID}` });
    expect(start!.query.rid).toMatch(UUID_RE);
    expect(success!.query.rid).toBe(start!.query.rid);
    expect(start!.query.rid).toBe(pingRunId(workflowId));
    expect(start!.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(start!.body).toContain('[backupctl] started: app full backup 2025-11-04T03:00:00Z');
    const m = message(events.success);
    expect(success!.body).toBe(`${m.subject}\n\n${m.text}`);
  });

  it('failure, cancelled and skipped → /<uuid>/fail with the message as body and the run\'s rid; an alert → /fail without rid', async () => {
    const n = hc({ baseUrl: sink.url, uuid: UUID });
    for (const event of [events.failure, events.cancelled, events.skipped, events.alert]) await n.send(event, message(event));
    const [failure, cancelled, skipped, alert] = sink.requests;
    for (const r of [failure, cancelled, skipped]) {
      expect(r).toMatchObject({ method: 'POST', path: `/${UUID}/fail`, query: { rid: pingRunId(workflowId) } });
    }
    expect(failure!.body).toBe(message(events.failure).text);
    expect(failure!.body).toContain('Backup FAILED in the verify step');
    expect(cancelled!.body).toContain('CANCELLED');
    expect(skipped!.body).toContain('held the job lock');
    expect(alert).toMatchObject({ path: `/${UUID}/fail`, query: {} });
    expect(alert!.body).toContain('newest full backup is 26 h old');
  });

  it('a long log tail is cut to 100 kB (UTF-8 bytes), keeping its head', async () => {
    const n = hc({ baseUrl: sink.url, uuid: UUID });
    const m = message(events.failure);
    await n.send(events.failure, { ...m, text: `${m.text}\n${'ä'.repeat(80_000)}` });
    const req = await sink.waitFor(() => true);
    expect(req.raw.length).toBeLessThanOrEqual(PING_BODY_LIMIT);
    expect(req.raw.length).toBeGreaterThan(PING_BODY_LIMIT - 100);
    expect(req.body.startsWith(m.text)).toBe(true);
    expect(req.body).not.toContain('\uFFFD'); // no character cut in half
    expect(req.body.endsWith('[… truncated]')).toBe(true);
  });

  it('ping key and slug from a secret reference; base URL with a path (self-hosted) and a trailing slash', async () => {
    process.env.TEST_HC_PING_KEY = 'pk_AbCdEfGhIjKlMnOpQrStUv';
    try {
      const n = hc({ baseUrl: `${sink.url}/ping/`, pingKey: { env: 'TEST_HC_PING_KEY' }, slug: 'app-backup' });
      await n.send(events.start, message(events.start));
      await n.send(events.failure, message(events.failure));
      expect(sink.requests.map((r) => r.path)).toEqual(['/ping/pk_AbCdEfGhIjKlMnOpQrStUv/app-backup/start', '/ping/pk_AbCdEfGhIjKlMnOpQrStUv/app-backup/fail']);
      expect(sink.requests[0]!.query.rid).toBe(sink.requests[1]!.query.rid);
    } finally {
      delete process.env.TEST_HC_PING_KEY;
    }
  });

  it('the UUID from a file reference (trailing newline, upper case) is used lower-cased', async () => {
    const file = path.join(dir, 'hc-uuid');
    await writeFile(file, `${UUID.toUpperCase()}\n`);
    await hc({ baseUrl: sink.url, uuid: { file } }).send(events.success, message(events.success));
    expect((await sink.waitFor(() => true)).path).toBe(`/${UUID}`);
  });

  it('404 (unknown check) is permanent and does not show the UUID; 500 and 429 are retryable', async () => {
    const n = hc({ baseUrl: sink.url, uuid: UUID });
    sink.respondWith(404, { body: `not found: ${UUID}` });
    const err = await rejection(() => n.send(events.failure, message(events.failure)));
    expect(err).toMatchObject({ code: 'NOTIFY_FAILED', permanent: true });
    expect(err.message).toContain('HTTP 404');
    expect(err.message).toContain(`notifier "hc" (healthchecks http://127.0.0.1:${sink.port}/…)`);
    expect(err.message).not.toContain(UUID);

    for (const status of [500, 429]) {
      sink.respondWith(status, { times: 1 });
      const e = await rejection(() => n.send(events.start, message(events.start)));
      expect(e.permanent).toBe(false);
      expect(e.message).toContain(`HTTP ${status}`);
    }
  });

  it('an unreachable server (connection refused) is retryable', async () => {
    const down = await startHttpSink();
    await down.stop();
    const err = await rejection(() => hc({ baseUrl: down.url, uuid: UUID }).send(events.start, message(events.start)));
    expect(err).toMatchObject({ code: 'NOTIFY_FAILED', permanent: false });
    expect(err.message).toMatch(/cannot connect: .*ECONNREFUSED/);
    expect(err.message).not.toContain(UUID);
  });

  it('check() sends only a /log ping (no status change), and reports an unknown check', async () => {
    const n = hc({ baseUrl: sink.url, uuid: UUID });
    const ok = await n.check();
    expect(ok).toContain('status unchanged');
    expect(ok).not.toContain(UUID);
    expect(sink.requests).toHaveLength(1);
    expect(sink.requests[0]).toMatchObject({ method: 'POST', path: `/${UUID}/log`, query: {} });
    expect(sink.requests[0]!.body).toContain('config check');

    sink.respondWith(404, { body: 'not found' });
    const err = await rejection(() => n.check());
    expect(err).toMatchObject({ code: 'NOTIFY_FAILED', permanent: true });
  });
});

import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { healthchecksNotifierSchema } from '../../src/notifiers/healthchecks/schema.js';
import { webhookNotifierSchema } from '../../src/notifiers/webhook/schema.js';

const issues = (r: { success: boolean; error?: { issues: { message: string; path: PropertyKey[] }[] } }) =>
  (r.error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);

describe('webhook and healthchecks notifier config', () => {
  it('webhook defaults: json, every event but start, 10 s, no headers', () => {
    expect(webhookNotifierSchema.parse({ type: 'webhook', url: 'https://hooks.slack.com/services/x' })).toEqual({
      type: 'webhook', url: 'https://hooks.slack.com/services/x', format: 'json',
      events: ['success', 'failure', 'cancelled', 'skipped', 'alert'], timeout: 10_000, headers: {},
    });
  });

  it('webhook: URL as a secret reference, slack format, signing secret, timeout, headers', () => {
    const c = webhookNotifierSchema.parse({
      type: 'webhook', url: { env: 'SLACK_URL' }, format: 'slack', secret: { file: '/etc/k' }, timeout: '3s',
      events: ['start', 'failure', 'cancelled'], headers: { Authorization: { env: 'T' }, 'X-A': 'b' },
    });
    expect(c).toMatchObject({ url: { env: 'SLACK_URL' }, format: 'slack', secret: { file: '/etc/k' }, timeout: 3000, headers: { Authorization: { env: 'T' }, 'X-A': 'b' } });
  });

  it('webhook: rejects a non-http URL, an events list without failure and cancelled, backupctl\'s own headers', () => {
    expect(issues(webhookNotifierSchema.safeParse({ type: 'webhook', url: 'ftp://x/y' })).join()).toContain('http:// or https://');
    expect(issues(webhookNotifierSchema.safeParse({ type: 'webhook', url: 'https://x/y', events: ['success'] })).join()).toContain('failure and cancelled are always sent');
    expect(issues(webhookNotifierSchema.safeParse({ type: 'webhook', url: 'https://x/y', events: ['bogus', 'failure', 'cancelled'] })).join()).toContain('expected one of');
    expect(issues(webhookNotifierSchema.safeParse({ type: 'webhook', url: 'https://x/y', headers: { 'X-Backupctl-Signature': 'x' } })).join()).toContain('set by backupctl');
    expect(issues(webhookNotifierSchema.safeParse({ type: 'webhook', url: 'https://x/y', headers: { 'Bad Header': 'x' } })).join()).toContain('header name');
  });

  it('healthchecks: defaults, and exactly one of uuid or pingKey + slug', () => {
    expect(healthchecksNotifierSchema.parse({ type: 'healthchecks', uuid: '5f4c1a2b-9d3e-4f60-8a7b-1c2d3e4f5a6b' })).toEqual({
      type: 'healthchecks', baseUrl: 'https://hc-ping.com', uuid: '5f4c1a2b-9d3e-4f60-8a7b-1c2d3e4f5a6b', timeout: 10_000,
    });
    expect(healthchecksNotifierSchema.safeParse({ type: 'healthchecks', pingKey: { env: 'K' }, slug: 'app' }).success).toBe(true);
    expect(healthchecksNotifierSchema.safeParse({ type: 'healthchecks', uuid: { env: 'U' }, baseUrl: 'https://hc.example.org/ping' }).success).toBe(true);
    expect(issues(healthchecksNotifierSchema.safeParse({ type: 'healthchecks' })).join()).toContain('exactly one of uuid, or pingKey and slug');
    expect(issues(healthchecksNotifierSchema.safeParse({ type: 'healthchecks', uuid: '5f4c1a2b-9d3e-4f60-8a7b-1c2d3e4f5a6b', slug: 'app', pingKey: { env: 'K' } })).join()).toContain('exactly one');
    expect(issues(healthchecksNotifierSchema.safeParse({ type: 'healthchecks', pingKey: { env: 'K' } })).join()).toContain('pingKey and slug go together');
    expect(issues(healthchecksNotifierSchema.safeParse({ type: 'healthchecks', uuid: 'not-a-uuid' })).join()).toContain('UUID');
    expect(issues(healthchecksNotifierSchema.safeParse({ type: 'healthchecks', uuid: { env: 'U' }, slug: 'Bad Slug', pingKey: { env: 'K' } })).join()).toContain('slug');
  });

  it('relative secret files are resolved against the config file', () => {
    const { config } = parseConfig(`
destinations: { nas: { type: local, path: /srv/b } }
notifiers:
  slack: { type: webhook, url: { file: secrets/slack-url }, secret: { file: k }, headers: { Authorization: { file: auth } } }
  hc: { type: healthchecks, pingKey: { file: hc-key }, slug: app }
jobs: { app: { sources: [{ name: f, type: files, paths: [/srv/app] }], destinations: [nas], notify: [slack, hc] } }
`, '/etc/backupctl/backup.yml');
    expect(config.notifiers.slack).toMatchObject({
      url: { file: '/etc/backupctl/secrets/slack-url' }, secret: { file: '/etc/backupctl/k' }, headers: { Authorization: { file: '/etc/backupctl/auth' } },
    });
    expect(config.notifiers.hc).toMatchObject({ pingKey: { file: '/etc/backupctl/hc-key' } });
  });
});

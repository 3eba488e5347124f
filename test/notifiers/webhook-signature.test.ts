import { describe, expect, it } from 'vitest';
import { computeSignature, escapeSlack, signatureHeaders, webhookPayload } from '../../src/notifiers/webhook/index.js';
import type { BackupEvent } from '../../src/contracts/index.js';

describe('webhook signature', () => {
  it('is sha256=<hex HMAC-SHA256(key, "<timestamp>.<body>")>', () => {
    // printf '%s' '1700000000.{"text":"hello"}' | openssl dgst -sha256 -hmac whsec_test
    const expected = 'sha256=4de4482f0d79eb97df8f0e9ece4238de4e613a5ad29c846b70bc7dd6e1389e80';
    expect(computeSignature('whsec_test', '1700000000', '{"text":"hello"}')).toBe(expected);
    expect(computeSignature('whsec_test', '1700000000', Buffer.from('{"text":"hello"}'))).toBe(expected);
  });

  it('headers: unix seconds and the signature over them', () => {
    const h = signatureHeaders('whsec_test', '{"text":"hello"}', 1_700_000_000_999);
    expect(h).toEqual({
      'X-Backupctl-Timestamp': '1700000000',
      'X-Backupctl-Signature': 'sha256=4de4482f0d79eb97df8f0e9ece4238de4e613a5ad29c846b70bc7dd6e1389e80',
    });
  });

  it('depends on key, timestamp and every body byte', () => {
    const base = computeSignature('k', '1', 'body');
    expect(computeSignature('k2', '1', 'body')).not.toBe(base);
    expect(computeSignature('k', '2', 'body')).not.toBe(base);
    expect(computeSignature('k', '1', 'body ')).not.toBe(base);
  });
});

describe('webhook payloads', () => {
  const event: BackupEvent = { kind: 'alert', job: 'app', problems: ['schedule app-full is paused'], checkedAt: '2025-11-05T05:00:00Z' };
  const message = { id: 'abc', subject: '[backupctl] ALERT: app: <!channel> & co', text: 'line 1\nline 2' };

  it('slack: one text field, subject and text, control characters escaped (no accidental @channel)', () => {
    expect(webhookPayload('slack', event, message)).toEqual({ text: '[backupctl] ALERT: app: &lt;!channel&gt; &amp; co\nline 1\nline 2' });
    expect(escapeSlack('a<b>&c')).toBe('a&lt;b&gt;&amp;c');
  });

  it('json: the generic event', () => {
    expect(webhookPayload('json', event, message)).toEqual({
      source: 'backupctl', version: 1, id: 'abc', kind: 'alert', job: 'app', subject: message.subject, text: message.text, event,
    });
  });
});

import { describe, expect, it } from 'vitest';
import { isPermanentStatus, redactUrl, scrub, truncateUtf8, urlSecrets } from '../../src/notifiers/http.js';

describe('notifier HTTP helpers', () => {
  it('redactUrl keeps only scheme, host and port', () => {
    expect(redactUrl(new URL('https://hooks.slack.com/services/T0/B0/XYZ?x=1'))).toBe('https://hooks.slack.com/…');
    expect(redactUrl(new URL('http://user:pw@127.0.0.1:8080/a/b'))).toBe('http://127.0.0.1:8080/…');
  });

  it('scrub removes the URL\'s path, segments and query values, raw and decoded', () => {
    const url = new URL('https://example.org/hooks/abc%20def123/tok_9876543210?key=q_secret_1');
    const text = 'Cannot POST /hooks/abc%20def123/tok_9876543210 (abc def123) key q_secret_1 at https://example.org/hooks/abc%20def123/tok_9876543210?key=q_secret_1';
    const out = scrub(text, urlSecrets(url));
    expect(out).not.toMatch(/tok_9876543210|abc%20def123|abc def123|q_secret_1/);
    expect(out).toContain('Cannot POST');
    expect(scrub('no secrets here', ['', '/', 'abc'])).toBe('no secrets here');
  });

  it('truncateUtf8 keeps the head within the byte limit, on a character boundary', () => {
    expect(truncateUtf8('short', 100)).toBe('short');
    const cut = truncateUtf8('é'.repeat(100), 51, '~');
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(51);
    expect(cut).toBe(`${'é'.repeat(25)}~`);
    expect(cut).not.toContain('\uFFFD');
  });

  it('4xx and 3xx are permanent except 408 and 429; 5xx are retried', () => {
    for (const s of [301, 400, 401, 403, 404, 410, 413, 422]) expect(isPermanentStatus(s)).toBe(true);
    for (const s of [408, 429, 500, 502, 503, 504]) expect(isPermanentStatus(s)).toBe(false);
  });
});

import net from 'node:net';
import tls from 'node:tls';
import { BackupError } from '../errors.js';

/**
 * HTTP plumbing shared by the webhook and healthchecks notifiers: one POST with a timeout, errors classified for
 * Temporal's retries, and nothing secret in any message. URLs of these services carry tokens (a Slack webhook's path,
 * a healthchecks UUID or ping key), so a URL is only ever shown as `scheme://host/…`, and server answers quoted in
 * errors are scrubbed of the URL's parts (an "unknown path" page often echoes the path).
 */

/** `https://hooks.slack.com/services/T0/B0/XYZ` → `https://hooks.slack.com/…`: never the path, query or user info. */
export function redactUrl(url: URL): string {
  return `${url.protocol}//${url.host}/…`;
}

/** The parts of a URL that may be secret, as they could appear in a server's answer (raw and percent-decoded). */
export function urlSecrets(url: URL): string[] {
  const out = [url.href, `${url.pathname}${url.search}`, url.pathname, url.search.slice(1), url.username, url.password];
  for (const seg of url.pathname.split('/')) out.push(seg);
  for (const [k, v] of url.searchParams) out.push(k, v);
  const decoded = out.map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  return [...out, ...decoded];
}

/** Replaces every occurrence of each secret (6 characters or more: shorter ones are no secret) with `[redacted]`. */
export function scrub(text: string, secrets: readonly string[]): string {
  const list = [...new Set(secrets.filter((s) => s.length >= 6))].sort((a, b) => b.length - a.length);
  let out = text;
  for (const s of list) out = out.split(s).join('[redacted]');
  return out;
}

/** Cuts `text` to at most `maxBytes` UTF-8 bytes, keeping the head (where the summary is), at a character boundary. */
export function truncateUtf8(text: string, maxBytes: number, marker = '\n[… truncated]'): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return text;
  let n = Math.max(0, maxBytes - Buffer.byteLength(marker));
  while (n > 0 && (buf[n]! & 0xc0) === 0x80) n--; // do not split a multi-byte character
  return buf.subarray(0, n).toString('utf8') + marker;
}

/**
 * Whether an HTTP status means "do not retry": 4xx (the request or the configuration is wrong, e.g. 404 for a deleted
 * webhook or check, 400, 401, 403), except 408 (request timeout) and 429 (rate limited), which pass. 3xx count as
 * permanent too: redirects are not followed (a signed body must not travel to another host), so the URL must be fixed.
 * 5xx, like network errors and timeouts, are retried.
 */
export function isPermanentStatus(status: number): boolean {
  return status >= 300 && status < 500 && status !== 408 && status !== 429;
}

/** The start of a response body, on one line, for an error message (at most `max` characters, read at most 4 KiB). */
async function excerpt(res: Response, max = 200): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < 4096) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const text = new TextDecoder().decode(Buffer.concat(chunks)).replace(/\s+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** The useful part of a network error from `fetch` or a socket (`connect ECONNREFUSED 127.0.0.1:80`, `getaddrinfo ENOTFOUND x`). */
function networkReason(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: unknown };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${timeoutMs / 1000} s`;
  // fetch: TypeError('fetch failed') with the socket error as cause; Node 20's happy eyeballs: an AggregateError.
  const c = (e?.cause ?? e) as Error & { code?: string; errors?: Error[] };
  const inner = c?.errors?.[0] as (Error & { code?: string }) | undefined;
  const reason = c?.message || inner?.message || c?.code || String(c);
  return `cannot connect: ${reason}`;
}

export interface PostOptions {
  url: URL;
  body: Uint8Array | string;
  headers: Record<string, string>;
  timeoutMs: number;
  /** Who is sending, for messages: `notifier "ops" (webhook https://hooks.slack.com/…)`. */
  where: string;
  /** Strings that must not appear in error messages (the URL's parts, keys). */
  secrets: readonly string[];
}

/**
 * POSTs once and resolves with the start of the answer's body when the status is 2xx. Otherwise throws
 * `BackupError('NOTIFY_FAILED')`: permanent for a 3xx/4xx rejection (not 408/429), retryable for 5xx, 408, 429,
 * timeouts and network errors, with the status and a scrubbed excerpt of the answer. No `cause` is attached: it could
 * carry the URL into the workflow history.
 */
export async function postOnce(opts: PostOptions): Promise<string> {
  const { url, where, secrets, timeoutMs } = opts;
  const signal = AbortSignal.timeout(timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', body: opts.body, headers: opts.headers, redirect: 'manual', signal });
  } catch (err) {
    throw new BackupError('NOTIFY_FAILED', `${where}: ${scrub(networkReason(err, timeoutMs), secrets)}`, { permanent: false });
  }
  // The request was answered: a failure to read the answer's body no longer matters for a 2xx.
  const answer = scrub(await excerpt(res).catch(() => ''), secrets);
  if (res.status >= 200 && res.status < 300) return answer;
  const permanent = isPermanentStatus(res.status);
  const status = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  const location = res.status >= 300 && res.status < 400 ? ' (a redirect: redirects are not followed; configure the final URL)' : '';
  throw new BackupError('NOTIFY_FAILED', `${where}: ${status}${location}${answer ? `: ${answer}` : ''}`, {
    permanent,
    hint: permanent ? 'the server rejected the request: check the URL (or UUID, ping key, slug) and the credentials' : undefined,
  });
}

/**
 * Opens a TCP connection (and, for https, completes the TLS handshake with certificate and host name checks) to the
 * URL's host and port, then closes it without sending a request. For `config check` of endpoints where any request
 * would be a real notification.
 */
export function probeUrl(url: URL, timeoutMs: number, where: string): Promise<string> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const https = url.protocol === 'https:';
  const port = Number(url.port || (https ? 443 : 80));
  return new Promise((resolve, reject) => {
    const socket = https
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'] })
      : net.connect({ host, port });
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { name: 'TimeoutError' })), timeoutMs);
    socket.once(https ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      socket.end();
      resolve(`${redactUrl(url)} reachable${https ? ' (TLS certificate valid)' : ''}`);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new BackupError('NOTIFY_FAILED', `${where}: ${networkReason(err, timeoutMs)}`, { permanent: false }));
    });
  });
}

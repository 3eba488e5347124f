import type { SecretRef } from '../../config/fields.js';
import type { WebhookNotifierConfig as WebhookConfig } from './schema.js';
import { readSecret } from '../../config/secrets.js';
import { BackupError } from '../../errors.js';
import { eventJob, type BackupEvent } from '../../contracts/events.js';
import { postOnce, probeUrl, redactUrl, urlSecrets } from '../http.js';
import type { Notifier, RenderedMessage } from '../types.js';
import { EVENT_ID_HEADER, signatureHeaders } from './signature.js';

export { computeSignature, signatureHeaders, EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './signature.js';

/** The body of a `json` webhook. `event` is the BackupEvent as the workflow produced it (plain JSON, no secrets). */
export interface WebhookEvent {
  source: 'backupctl';
  version: 1;
  /** Stable for one event of one run, also across resends: deduplicate on it (also sent as X-Backupctl-Event-Id). */
  id: string;
  kind: BackupEvent['kind'];
  job: string;
  subject: string;
  text: string;
  event: BackupEvent;
}

/** Slack's control characters in message text (`<…>` links and mentions such as `<!channel>`, `&`), escaped. */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The request body for a format: Slack's `{ text }`, or backupctl's generic event. */
export function webhookPayload(format: 'slack' | 'json', event: BackupEvent, message: RenderedMessage): { text: string } | WebhookEvent {
  if (format === 'slack') return { text: escapeSlack(`${message.subject}\n${message.text}`) };
  return {
    source: 'backupctl', version: 1, id: message.id, kind: event.kind, job: eventJob(event),
    subject: message.subject, text: message.text, event,
  };
}

function describeRef(ref: SecretRef): string {
  return 'env' in ref ? `environment variable ${ref.env}` : `file ${ref.file}`;
}

/**
 * POSTs each wanted event as JSON to a URL: Slack incoming webhooks (and compatibles: Mattermost, Rocket.Chat,
 * Discord's `/slack` endpoint) with `format: slack`, or any receiver with `format: json`, optionally signed with
 * HMAC-SHA256 (scheme in ./signature.ts). The URL is treated as a secret: it never appears in messages.
 */
export class WebhookNotifier implements Notifier {
  readonly type = 'webhook';
  private readonly events: ReadonlySet<BackupEvent['kind']>;

  constructor(readonly name: string, private readonly cfg: WebhookConfig) {
    this.events = new Set(cfg.events);
  }

  wants(event: BackupEvent): boolean {
    return event.kind === 'failure' || event.kind === 'cancelled' || (event.kind === 'drill' && !event.report.ok) || this.events.has(event.kind);
  }

  private async url(): Promise<URL> {
    const ref = this.cfg.url;
    if (typeof ref === 'string') return new URL(ref); // validated by the config schema
    const raw = (await readSecret(ref, `notifier "${this.name}" webhook URL`)).trim();
    let url: URL | undefined;
    try {
      url = new URL(raw);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
      // Never quote the value: it is the secret.
      throw new BackupError('NOTIFY_FAILED', `notifier "${this.name}": the webhook URL in ${describeRef(ref)} is not an http:// or https:// URL`, {
        permanent: true, hint: `put the full URL, e.g. https://hooks.slack.com/services/…, in ${describeRef(ref)}`,
      });
    }
    return url;
  }

  /** The configured extra headers with their secret references read, and the secret values (to scrub from errors). */
  private async headers(): Promise<{ values: Record<string, string>; secrets: string[] }> {
    const values: Record<string, string> = {};
    const secrets: string[] = [];
    for (const [name, v] of Object.entries(this.cfg.headers)) {
      if (typeof v === 'string') {
        values[name] = v;
      } else {
        values[name] = await readSecret(v, `notifier "${this.name}" header ${name}`);
        secrets.push(values[name]);
      }
    }
    return { values, secrets };
  }

  private async signingKey(): Promise<string | undefined> {
    return this.cfg.secret ? readSecret(this.cfg.secret, `notifier "${this.name}" signing secret`) : undefined;
  }

  async send(event: BackupEvent, message: RenderedMessage): Promise<void> {
    const url = await this.url();
    const extra = await this.headers();
    const key = await this.signingKey();
    // Signed and sent: these exact bytes.
    const body = Buffer.from(JSON.stringify(webhookPayload(this.cfg.format, event, message)), 'utf8');
    const headers: Record<string, string> = {
      ...extra.values,
      'Content-Type': 'application/json; charset=utf-8',
      'User-Agent': 'backupctl',
      [EVENT_ID_HEADER]: message.id,
      ...(key === undefined ? {} : signatureHeaders(key, body)),
    };
    await postOnce({
      url, body, headers, timeoutMs: this.cfg.timeout,
      where: `notifier "${this.name}" (webhook ${redactUrl(url)})`,
      secrets: [...urlSecrets(url), ...extra.secrets, ...(key === undefined ? [] : [key])],
    });
  }

  /**
   * Reads the URL and every secret, then connects to the URL's host (TCP, and TLS with certificate checks for
   * https) without sending a request: any POST to a webhook is a message in someone's channel.
   */
  async check(): Promise<string> {
    const url = await this.url();
    await this.headers();
    await this.signingKey();
    const reachable = await probeUrl(url, this.cfg.timeout, `notifier "${this.name}" (webhook ${redactUrl(url)})`);
    return `webhook (${this.cfg.format}) ${reachable}${this.cfg.secret ? ', signing secret readable' : ''}; no message sent`;
  }
}
